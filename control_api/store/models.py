"""Tables: what must survive a restart (environments, keys, streams, sessions, media).

Columns hold hashes for secrets that only need checking (API keys, stream keys);
the SRT passphrase is kept because the AES key has to be derived from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Store naive UTC, hand back aware UTC: SQLite has no time zones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Environment(Base):
    __tablename__ = "environments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    access: Mapped[str] = mapped_column(String(16))
    cors_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LiveStream(Base):
    __tablename__ = "live_streams"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    edge_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="idle")
    quality: Mapped[str] = mapped_column(String(16))
    low_latency: Mapped[bool] = mapped_column(Boolean)
    recording: Mapped[bool] = mapped_column(Boolean)
    reconnect_window_seconds: Mapped[int] = mapped_column(Integer)
    playback_policy: Mapped[str] = mapped_column(String(16))
    plan: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    srt_passphrase: Mapped[str | None] = mapped_column(String(79), nullable=True)
    stream_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Channels (``source == "queue"``): what plays, when, and in which profile.
    source: Mapped[str] = mapped_column(String(8), default="encoder", server_default="encoder")
    loop: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    scheduled_start: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    scheduled_end: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    schedule_repeat: Mapped[str] = mapped_column(String(8), default="none", server_default="none")
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Playout state, saved every few seconds: a restart resumes the channel from here.
    playout_on: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    playout_window_start: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """The schedule window the channel last started in: it plays each window once."""
    playout_item_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    playout_position: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    playout_loops: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    playout_saved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class QueueItem(Base):
    """One entry of a channel's queue; ``position`` is dense, 0-based, per stream."""

    __tablename__ = "queue_items"
    __table_args__ = (Index("ix_queue_items_stream_position", "stream_id", "position"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("live_streams.id", ondelete="CASCADE"))
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StreamSession(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    stream_id: Mapped[str] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), index=True
    )
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(8))
    remote_addr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    """Last time the encoder was known to be there (saved with the checkpoints): where a
    session the process died under ends."""
    recording_media_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    peak_viewers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Most concurrent viewers (HLS, RTMP and SRT together), saved when the session ends."""
    viewer_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The node the encoder reached (None: written before nodes existed)."""


class Node(Base):
    """One relaycast process of the installation, alive while its lease runs."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    region: Mapped[str] = mapped_column(String(32))
    http_url: Mapped[str] = mapped_column(Text)
    rtmp_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    srt_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    rtmps_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # where other nodes fetch the HLS of the streams this node carries
    internal_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class JobClaim(Base):
    """A background job (probing an item, an import, a node's left-behind recordings,
    the periodic sweep) held by one process of one node: the primary key lets one in,
    and a lapsed lease hands the job to another node."""

    __tablename__ = "job_claims"

    job: Mapped[str] = mapped_column(String(120), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), index=True)
    run: Mapped[str] = mapped_column(String(32))
    """The process holding it: a node's next run takes its previous run's jobs at once."""
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StreamClaim(Base):
    """Which node holds a stream's publisher: the primary key lets one node at a time
    in, whatever the number of nodes racing; a lapsed lease may be taken over."""

    __tablename__ = "stream_claims"

    stream_id: Mapped[str] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), primary_key=True
    )
    node: Mapped[str] = mapped_column(String(64), index=True)
    token: Mapped[str] = mapped_column(String(32))
    """This claim among the node's successive claims on the stream: a late release of
    an earlier one must not delete the claim that followed it."""
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    lease_expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Destination(Base):
    """A multistream destination of a live stream.

    ``url`` holds no secrets and may be shown; ``stream_key`` and ``srt_passphrase``
    are write-only in the API but stored retrievably (not hashed): the pusher must
    send them to the platform. Protect the database accordingly.
    """

    __tablename__ = "destinations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    stream_id: Mapped[str] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    stream_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    srt_passphrase: Mapped[str | None] = mapped_column(String(79), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # "source", or the name of a rung of the stream's ladder (transcode.ladders)
    rendition: Mapped[str] = mapped_column(String(16), default="source", server_default="source")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ServerSecret(Base):
    """Secrets the server itself signs with (tokens); generated on first start."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class Folder(Base):
    __tablename__ = "folders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("folders.id"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("environment_id", "name", name="uq_tags_environment_name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


media_tags = Table(
    "media_tags",
    Base.metadata,
    Column("media_id", ForeignKey("media.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Media(Base):
    """A file in the library. ``path`` is relative to ``<data_dir>/media``.

    Probe results (``video``, ``audio``) are small JSON objects: they are shown, not
    queried, and their shape can grow without a migration.
    """

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    folder_id: Mapped[str | None] = mapped_column(
        ForeignKey("folders.id", ondelete="SET NULL"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    container: Mapped[str | None] = mapped_column(String(64), nullable=True)
    video: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    audio: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    playback_policy: Mapped[str] = mapped_column(
        String(16), default="private", server_default="private"
    )
    # The seekable MP4 served at mp4Url: ``path`` itself for an MP4 upload, a remuxed
    # copy (``path`` + ".mp4") otherwise, None when MP4 cannot carry the codecs.
    mp4_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # A recording's stream and session (plain ids: the item outlives both).
    stream_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    tags: Mapped[list[Tag]] = relationship(secondary=media_tags, lazy="selectin", order_by=Tag.name)


class Upload(Base):
    """A tus upload. ``received`` is the durable offset: bytes fsynced before it was written.

    The media id is reserved at creation so that the data file is named after the item
    it becomes, and a client can learn that id before the last byte arrives.
    """

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    media_id: Mapped[str] = mapped_column(String(40), unique=True)
    length: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    metadata_header: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(255))
    folder_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    path: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Task(Base):
    """Background work a caller can follow (URL imports)."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Webhook(Base):
    """A receiver of events. ``secret`` is kept as given (not hashed): every delivery
    is signed with it, so it has to be read back; it is shown only on creation."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookDelivery(Base):
    """One event queued for one webhook: the outbox a restart resumes from.

    ``payload`` is the exact body sent on every attempt, so a retry is byte-identical
    (receivers deduplicate on the event id). ``give_up_at`` ends the retries.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    give_up_at: Mapped[datetime] = mapped_column(UtcDateTime())
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class IngestFailure(Base):
    """A refused publish, newest kept (``diagnostics.ingest_failures_kept``).

    ``attempted`` is already masked by the media plane; ``environment_id`` is null
    for refusals tied to no stream (unknown key, wrong app, protocol errors). No
    foreign keys: a diagnostic row outlives the stream it names.
    """

    __tablename__ = "ingest_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    protocol: Mapped[str] = mapped_column(String(8))
    remote_addr: Mapped[str] = mapped_column(String(64))
    attempted: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(300))
    environment_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    stream_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
