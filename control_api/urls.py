"""Ingest and playback URLs as a user pastes them into OBS or a player.

Ports are the ones actually bound (a configured port 0 becomes the real one), and
the host is the configured public host, so the URLs work as shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(slots=True)
class Endpoints:
    public_host: str
    http_port: int
    rtmp_port: int
    srt_port: int
    rtmp_app: str = "live"
    rtmps_port: int | None = None

    @property
    def http_base(self) -> str:
        return f"http://{_host(self.public_host)}:{self.http_port}"

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://{_host(self.public_host)}:{self.rtmp_port}/{self.rtmp_app}"

    @property
    def rtmps_url(self) -> str | None:
        if self.rtmps_port is None:
            return None
        return f"rtmps://{_host(self.public_host)}:{self.rtmps_port}/{self.rtmp_app}"

    @property
    def srt_url(self) -> str:
        return f"srt://{_host(self.public_host)}:{self.srt_port}"

    def srt_full_url(self, stream_key: str) -> str:
        return f"{self.srt_url}?streamid=#!::r={self.rtmp_app}/{stream_key},m=publish"

    def hls_url(self, edge_id: str) -> str:
        return f"{self.http_base}/live/{edge_id}/master.m3u8"

    def rtmp_play_url(self, edge_id: str) -> str:
        """What ffplay, VLC or ffmpeg play (``?token=T`` appended for private streams)."""
        return f"{self.rtmp_url}/{edge_id}"

    def srt_play_url(self, edge_id: str) -> str:
        """An SRT caller's playback URL (``,s=T`` appended for private streams)."""
        return f"{self.srt_url}?streamid=#!::r={self.rtmp_app}/{edge_id},m=request"

    @property
    def whip_url(self) -> str:
        """OBS's WHIP "Server"; the stream key is the Bearer token."""
        return f"{self.http_base}/whip/live"

    def whep_url(self, edge_id: str) -> str:
        """WHEP playback (``?token=T`` appended for private streams)."""
        return f"{self.http_base}/whep/{edge_id}"

    def vod_hls_url(self, media_id: str) -> str:
        return f"{self.http_base}/vod/{media_id}/master.m3u8"

    def vod_mp4_url(self, media_id: str) -> str:
        return f"{self.http_base}/vod/{media_id}/file.mp4"


def _port(url: str | None) -> int | None:
    return urlsplit(url).port if url else None


def node_endpoints(
    here: Endpoints, http_url: str, rtmp_url: str | None, srt_url: str | None, rtmps_url: str | None
) -> Endpoints:
    """Another node's endpoints, from the URLs it announced (``here`` fills what it
    did not announce: a protocol it does not listen on keeps this node's port)."""
    return replace(
        here,
        public_host=urlsplit(http_url).hostname or here.public_host,
        http_port=_port(http_url) or here.http_port,
        rtmp_port=_port(rtmp_url) or here.rtmp_port,
        srt_port=_port(srt_url) or here.srt_port,
        rtmps_port=_port(rtmps_url),
    )
