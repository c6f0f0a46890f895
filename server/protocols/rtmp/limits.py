"""Named bounds for one RTMP connection (architecture principle 3: bounded everything).

Each value is a setting with a name so that configuration can override it and a log
line can say which limit a peer hit. Pending *output* is not bounded here: the
caller drains ``data_to_send()`` and must stop feeding (or drop media) when its
transport buffer is full.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RtmpLimits:
    """Limits and defaults for one connection.

    Attributes:
        handshake_timeout: seconds from creation until C0..C2/S0..S2 must be done
            (client role), or until a publish is accepted (server role): a peer that
            keeps sending a byte now and then must not hold a connection slot forever.
        idle_timeout: seconds without a single byte from the peer before we give up
            (server role always; client role only until ``PublishStarted``, because a
            server owes a publisher nothing but occasional acknowledgements).
        max_chunk_size: largest Set Chunk Size we accept from the peer.
        max_message_size: largest message length a chunk header may announce.
        ack_window: the Window Acknowledgement Size / peer bandwidth we announce.
        out_chunk_size: our outgoing chunk size (announced with Set Chunk Size).
        max_chunk_streams: distinct chunk stream IDs the peer may use.
        max_partial_bytes: sum of announced lengths of messages still being
            reassembled across all chunk streams (interleaving cannot multiply memory).
        max_unpublished_bytes: server role, until a publish is accepted: the bound
            on those partial bytes and on deferred bytes alike. Nothing legitimate
            before publish is large, and anyone who can reach the port gets this far.
        max_streams: message streams (createStream) alive at once.
        max_deferred_bytes: bytes of messages held while the application decides
            on a connect or publish (an encoder may not wait for the answer).
    """

    handshake_timeout: float = 10.0
    idle_timeout: float = 30.0
    max_chunk_size: int = 65536
    max_message_size: int = 16 * MIB
    ack_window: int = 2_500_000
    out_chunk_size: int = 4096
    max_chunk_streams: int = 64
    max_partial_bytes: int = 32 * MIB
    max_streams: int = 8
    max_deferred_bytes: int = 16 * MIB
    max_unpublished_bytes: int = 1 * MIB

    def __post_init__(self) -> None:
        """Reject settings that would make the protocol itself invalid."""
        if self.handshake_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 128 <= self.out_chunk_size <= 0x7FFFFFFF:
            raise ValueError("out_chunk_size must be between 128 and 2**31-1")
        if not 1 <= self.max_chunk_size <= 0x7FFFFFFF:
            raise ValueError("max_chunk_size must be between 1 and 2**31-1")
        if not 1 <= self.max_message_size <= 16 * MIB:
            raise ValueError("max_message_size must be between 1 and 16 MiB (24-bit length)")
        if not 1 <= self.ack_window <= 0xFFFFFFFF:
            raise ValueError("ack_window must fit in 32 bits")
        for name in (
            "max_chunk_streams",
            "max_partial_bytes",
            "max_streams",
            "max_unpublished_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_deferred_bytes < 0:
            raise ValueError("max_deferred_bytes must not be negative")
