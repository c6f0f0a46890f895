"""The one typed settings model, loaded as defaults → TOML → environment → CLI flags.

Validation happens once, at start-up, so that a typo in a config file stops the
server with a line naming the setting instead of failing later mid-stream.
"""

from __future__ import annotations

import json
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from server.settings import (
    HlsSettings,
    IngestSettings,
    PlaybackSettings,
    PlayoutSettings,
    PushSettings,
    RecordSettings,
    RtmpSettings,
    RtmpsSettings,
    SrtSettings,
    TranscodeSettings,
    VodSettings,
    WebRtcSettings,
)

ENV_PREFIX = "RELAYCAST_"
# Process variables that share the prefix but are not settings: the config file's path,
# the hls.js file the player pages serve (``server.hls.player``), the switch to the
# pure-Python media path (``server.accel``) and the workers' spread folder
# (``server.ingest.spread``).
_NOT_SETTINGS = frozenset({"CONFIG", "HLSJS", "NO_EXTENSIONS", "SPREAD"})


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the setting and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104 - a server that is reached from encoders binds all by default
    public_host: str | None = None
    http_port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")
    log_format: Literal["text", "json"] = "text"
    shutdown_timeout: float = Field(5.0, gt=0, le=60)
    # Listen with SO_REUSEPORT: several processes share the HTTP, RTMP and SRT ports
    # and the kernel spreads connections (``--workers`` sets it for its workers).
    reuse_port: bool = False

    def advertised_host(self) -> str:
        """The host that goes into ingest/playback URLs: what a user can paste."""
        if self.public_host:
            return self.public_host
        if self.host not in ("0.0.0.0", "::", ""):  # noqa: S104
            return self.host
        return socket.gethostname()


class NodeSettings(_Section):
    """This process as one node of an installation that shares one PostgreSQL."""

    # Unique per process (``--workers N`` appends -1..-N); default: the host name.
    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    # One of ``regions``; default: ``default_region``.
    region: str | None = Field(None, min_length=1, max_length=32)
    # A node not heard from for this long is dead: its claims on streams lapse.
    lease_seconds: float = Field(15.0, ge=3, le=3600)
    # On a shared database each node also listens here for the HLS requests other
    # nodes proxy to it (port 0 = any free one); only playback is served there.
    internal_host: str = "127.0.0.1"
    internal_port: int = Field(0, ge=0, le=65535)
    # How other nodes reach that listener (e.g. http://10.0.0.5:8081 across machines);
    # default http://<internal_host>:<bound port>.
    internal_url: str | None = Field(None, pattern=r"^https?://[^/?#]+$")
    # Proxied playback: seconds a whole request may take (longer than the 3 target
    # durations a blocking reload may be held), to connect, the largest body passed
    # on, connections to other nodes at once, and how long an edge id's owner is
    # remembered (one database query per stream and period).
    proxy_timeout: float = Field(10.0, gt=0, le=120)
    proxy_connect_timeout: float = Field(2.0, gt=0, le=60)
    proxy_max_body_bytes: int = Field(32 * 1024 * 1024, ge=64 * 1024, le=1024**3)
    proxy_max_connections: int = Field(256, ge=1, le=100_000)
    proxy_lookup_seconds: float = Field(1.0, ge=0, le=60)

    def resolved_name(self) -> str:
        return self.name or socket.gethostname()[:64]


class HttpSettings(_Section):
    """Limits on HTTP connections (API, docs, HLS playback), before any request runs."""

    # Seconds a client has to finish a request head, from connecting or from the
    # previous response (so also how long an idle keep-alive connection stays open).
    header_timeout: float = Field(10.0, gt=0, le=300)
    # Seconds a client has to send a JSON request body once its head arrived; 408 after.
    body_timeout: float = Field(30.0, gt=0, le=3600)
    # Concurrent connections one IP address may hold (loopback too); more get 503.
    max_connections_per_address: int = Field(256, ge=1, le=1_000_000)


class DatabaseSettings(_Section):
    url: str | None = None
    echo: bool = False

    def resolved_url(self, data_dir: Path) -> str:
        if self.url:
            return self.url
        return f"sqlite+aiosqlite:///{(data_dir / 'relaycast.db').resolve()}"


class ApiSettings(_Section):
    rate_limit_per_minute: int = Field(60, ge=1, le=1_000_000)
    token_ttl_seconds: int = Field(3600, ge=1, le=86_400)
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Far below the interpreter's recursion limit, far above any real request body.
    max_json_depth: int = Field(32, ge=2, le=200)


GIB = 1024**3


class MediaSettings(_Section):
    """Media library: resumable uploads, URL imports and probing."""

    max_upload_bytes: int = Field(64 * GIB, ge=1, le=2**50)
    upload_expiry_hours: float = Field(24.0, gt=0, le=24 * 365)
    upload_idle_timeout: float = Field(60.0, gt=0, le=3600)
    upload_lock_wait: float = Field(10.0, gt=0, le=600)
    write_buffer_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    cleanup_interval: float = Field(600.0, gt=0, le=86_400)
    probe_concurrency: int = Field(2, ge=1, le=64)
    import_timeout: float = Field(3600.0, gt=0, le=7 * 86_400)
    import_idle_timeout: float = Field(60.0, gt=0, le=3600)
    import_max_bytes: int = Field(20 * GIB, ge=1, le=2**50)
    import_max_redirects: int = Field(5, ge=0, le=20)
    import_concurrency: int = Field(2, ge=1, le=64)
    allow_private_import_targets: bool = False


class RecordingSettings(RecordSettings):
    """Recording: the media plane's bounds plus where finished recordings go."""

    # The library folder (at the root of each environment) recordings land in;
    # created when missing.
    folder: str = Field("Recordings", min_length=1, max_length=200)
    # Recordings older than this many days are deleted (0 = keep them forever).
    delete_after_days: int = Field(0, ge=0, le=36_500)


class WebhookSettings(_Section):
    """Webhook delivery: per-attempt timeouts, the retry schedule and per-receiver limits."""

    timeout: float = Field(10.0, gt=0, le=300)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    retry_base_delay: float = Field(10.0, gt=0, le=3600)
    retry_max_delay: float = Field(3600.0, gt=0, le=86_400)
    retry_window_hours: float = Field(24.0, gt=0, le=24 * 30)
    concurrency_per_webhook: int = Field(1, ge=1, le=64)
    max_in_flight: int = Field(256, ge=1, le=10_000)
    queue_size: int = Field(10_000, ge=1, le=1_000_000)
    delivery_retention_hours: float = Field(168.0, gt=0, le=24 * 365)
    max_webhooks_per_environment: int = Field(100, ge=1, le=10_000)
    allow_private_targets: bool = False


class MetricsSettings(_Section):
    """``GET /metrics`` (Prometheus): who may scrape it and where it is served."""

    enabled: bool = True
    # Scrapers must send "Authorization: Bearer <token>" when set (Prometheus
    # authorization.credentials); unset = anyone who reaches the listener may scrape.
    token: str | None = Field(None, min_length=16, max_length=256)
    # Serve /metrics on its own listener (host:port) instead of the HTTP port.
    port: int | None = Field(None, ge=0, le=65535)
    host: str = "127.0.0.1"


class DiagnosticsSettings(_Section):
    """Refused-publish log behind ``GET /v1/ingest/failures``."""

    ingest_failures_kept: int = Field(1000, ge=10, le=1_000_000)
    session_checkpoint_seconds: float = Field(2.0, ge=0.5, le=3600)


class Resolution(_Section):
    width: int = Field(ge=16, le=16384)
    height: int = Field(ge=16, le=16384)


class PlanSettings(_Section):
    max_clients: int = Field(ge=1)
    max_resolution: Resolution
    max_frame_rate: float = Field(gt=0, le=300)
    max_bitrate: int = Field(ge=1, description="bits per second")


def _default_plans() -> dict[str, PlanSettings]:
    def plan(clients: int, w: int, h: int, fps: float, bitrate: int) -> PlanSettings:
        res = Resolution(width=w, height=h)
        return PlanSettings(
            max_clients=clients, max_resolution=res, max_frame_rate=fps, max_bitrate=bitrate
        )

    return {
        "basic": plan(100, 1280, 720, 30, 4_000_000),
        "standard": plan(1000, 1920, 1080, 60, 8_000_000),
        "pro": plan(10000, 3840, 2160, 60, 20_000_000),
    }


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    http: HttpSettings = HttpSettings()
    node: NodeSettings = NodeSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    rtmp: RtmpSettings = RtmpSettings()
    rtmps: RtmpsSettings = RtmpsSettings()
    srt: SrtSettings = SrtSettings()
    ingest: IngestSettings = IngestSettings()
    hls: HlsSettings = HlsSettings()
    push: PushSettings = PushSettings()
    playback: PlaybackSettings = PlaybackSettings()
    webrtc: WebRtcSettings = WebRtcSettings()
    media: MediaSettings = MediaSettings()
    recording: RecordingSettings = RecordingSettings()
    transcode: TranscodeSettings = TranscodeSettings()
    vod: VodSettings = VodSettings()
    playout: PlayoutSettings = PlayoutSettings()
    metrics: MetricsSettings = MetricsSettings()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    webhooks: WebhookSettings = WebhookSettings()
    plans: dict[str, PlanSettings] = Field(default_factory=_default_plans)
    default_plan: str = "standard"
    regions: list[str] = Field(default_factory=lambda: ["local"], min_length=1)
    default_region: str = "local"

    @model_validator(mode="after")
    def _defaults_exist(self) -> Settings:
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of plans")
        if self.default_region not in self.regions:
            raise ValueError(f"default_region {self.default_region!r} is not one of regions")
        if self.node.region is not None and self.node.region not in self.regions:
            raise ValueError(f"node.region {self.node.region!r} is not one of regions")
        if (self.rtmps.cert is None) != (self.rtmps.key is None):
            raise ValueError("rtmps.cert and rtmps.key must be set together")
        if self.metrics.port and self.metrics.port == self.server.http_port:
            raise ValueError("metrics.port must differ from server.http_port (or be unset)")
        return self

    @property
    def node_region(self) -> str:
        return self.node.region or self.default_region

    @property
    def database_url(self) -> str:
        return self.database.resolved_url(self.server.data_dir)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """``RELAYCAST_RTMP__PORT=1936`` → ``{"rtmp": {"port": "1936"}}``.

    Values that parse as JSON lists/objects are decoded (for ``regions`` and plans);
    scalars stay strings and pydantic coerces them.
    """
    layer: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in _NOT_SETTINGS:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        value: Any = raw
        if raw.strip().startswith(("[", "{")):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"invalid setting {name}: not valid JSON ({exc})") from None
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"invalid setting {name}: conflicts with another variable")
        node[path[-1]] = value
    return layer


def _file_layer(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {path}: not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "settings"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    return f"invalid setting {loc}: {msg}"


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every layer; raise SettingsError with one clear line."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    file = config_file or (
        Path(env[ENV_PREFIX + "CONFIG"]) if env.get(ENV_PREFIX + "CONFIG") else None
    )
    if file is not None:
        data = _deep_merge(data, _file_layer(file))
    data = _deep_merge(data, _env_layer(env))
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
