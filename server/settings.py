"""Settings sections owned by the media plane.

The control plane composes these into the one settings model the ``relaycast``
command loads (``control_api.settings``); they live here so that ``server`` never
has to import ``control_api`` to learn its own limits.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RtmpSettings(_Section):
    """RTMP ingest listener and its per-connection limits."""

    enabled: bool = True
    port: int = Field(1935, ge=0, le=65535)
    app: str = Field("live", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    handshake_timeout: float = Field(10.0, gt=0, le=300)
    idle_timeout: float = Field(30.0, gt=0, le=3600)
    max_chunk_size: int = Field(65536, ge=128, le=16_777_215)
    max_message_size: int = Field(16 * 1024 * 1024, ge=4096, le=256 * 1024 * 1024)
    max_connections: int = Field(1000, ge=1, le=100_000)


class RtmpsSettings(_Section):
    """RTMP over TLS; enabled when both a certificate and a key are configured."""

    port: int = Field(1936, ge=0, le=65535)
    cert: Path | None = None
    key: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.cert is not None and self.key is not None


class SrtSettings(_Section):
    """SRT ingest listener."""

    enabled: bool = True
    port: int = Field(9000, ge=0, le=65535)
    latency_ms: int = Field(120, ge=20, le=10_000)
    handshake_timeout: float = Field(5.0, gt=0, le=60)
    peer_idle_timeout: float = Field(5.0, gt=0, le=60)
    max_connections: int = Field(1000, ge=1, le=100_000)


class IngestSettings(_Section):
    """Rules shared by every ingest protocol."""

    takeover_silence_seconds: float = Field(3.0, gt=0, le=60)
    default_reconnect_window_seconds: int = Field(60, ge=0, le=3600)
