"""Opening a destination: the right client for the URL's scheme, with our settings.

The pusher only sees :class:`~server.push.ports.MediaPublisher`, the surface RTMP(S)
and SRT publishers share, so tests can hand it a fake and the pusher never branches
on protocol; this is the one place that picks a protocol.
"""

from __future__ import annotations

import ssl
from typing import Protocol

from server.settings import PushSettings

from .destination_url import scheme_of
from .ports import MediaPublisher
from .rtmp_client import RtmpPublisher
from .srt_client import SrtPublisher


class Connect(Protocol):
    async def __call__(self, url: str) -> MediaPublisher: ...


class Connector:
    """Opens publishers with the push settings; one per media plane.

    RTMPS verifies the destination's certificate against the system store plus
    ``push.ca_file`` when set; verification cannot be turned off.
    """

    def __init__(self, settings: PushSettings) -> None:
        self.settings = settings
        self._tls: ssl.SSLContext | None = None

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context()
            if self.settings.ca_file is not None:
                context.load_verify_locations(cafile=str(self.settings.ca_file))
            self._tls = context
        return self._tls

    async def __call__(self, url: str) -> MediaPublisher:
        scheme = scheme_of(url)
        buffer = self.settings.write_buffer_bytes
        if scheme == "srt":
            return await SrtPublisher.connect(
                url, timeout=self.settings.connect_timeout, write_buffer_high=buffer
            )
        return await RtmpPublisher.connect(
            url,
            ssl_context=self.tls_context() if scheme == "rtmps" else None,
            timeout=self.settings.connect_timeout,
            write_buffer_high=buffer,
        )
