"""Tables: what must survive a restart (environments, keys, streams, sessions).

Columns hold hashes for secrets that only need checking (API keys, stream keys);
the SRT passphrase is kept because the AES key has to be derived from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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
    recording_media_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class ServerSecret(Base):
    """Secrets the server itself signs with (tokens); generated on first start."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
