"""Live sender (brief 3.6-3.9): packetisation, retransmission buffer, ACK/NAK
handling, drop requests for what it gave up, key-material refresh, pacing.

Every packet is built once (header + possibly encrypted payload) and kept, as
bytes, until acknowledged or too old; a retransmission is the same bytes with the
R bit set (same timestamp, same ciphertext). Sequence numbers are extended
integers (see :mod:`seqno`): everything in ``[head, next)`` is in the buffer,
everything below ``acked`` was acknowledged, ``[acked, head)`` was dropped by age.

A tail nobody can report is probed: the receiver NAKs a gap only once a later packet
shows it, so when the last packets before a pause (or before the end) are lost, no NAK
ever comes. When the sender has been quiet -- nothing new sent, no ACK progress -- for
an RTO (RTT + 4 x variance + two ACK periods, at least 30 ms) with packets still
unacknowledged, it re-sends them, backing off x2 per probe without progress. A steady
stream never probes: its next packets reveal the gap, and its ACKs keep coming.

Pacing is a token bucket: ``max_bandwidth`` bytes/s, or, when that is 0, the
measured input rate + 25 % (at least ``min_pacing_rate``), with bursts of
``pacing_burst`` seconds allowed -- so a steady stream never waits for the timer
and a keyframe burst is spread over a few milliseconds instead of hitting the
network at once. Retransmissions go first.
"""

from __future__ import annotations

from collections import deque

from .control import (
    ackack_packet,
    dropreq_packet,
    km_packet,
    parse_ack_rtt,
    parse_loss_list,
)
from .crypto import SendKeys
from .limits import SrtLimits
from .link import NEVER, Link, Rtt
from .packet import HEADER, SOLO_IN_ORDER, ExtendedType, set_rexmit_flag
from .seqno import MSGNO_MASK, SEQ_MASK, seq_diff, unwrap_seq

_RATE_WINDOW = 1_000_000
_PROBE_FLOOR = 30_000
_PROBE_SYN_SLACK = 20_000
_PROBE_MAX_BACKOFF = 8
_PACING_OVERHEAD = 1.25


class LiveSender:
    """Sending half of a live connection."""

    def __init__(
        self,
        link: Link,
        rtt: Rtt,
        *,
        isn: int,
        peer_latency_ms: int,
        limits: SrtLimits,
        keys: SendKeys | None,
        now_us: int,
    ) -> None:
        self._link = link
        self._rtt = rtt
        self.keys = keys
        self._next = isn
        self._acked = isn
        self._head = isn
        self._msgno = 1
        self._buf: dict[int, tuple[bytes, int]] = {}  # ext seq -> (datagram, created)
        self._rexmitted: dict[int, int] = {}  # ext seq -> time of the last retransmission
        self._queue: deque[int] = deque()
        self._rexmit: deque[int] = deque()
        self._capacity = limits.send_buffer
        self.max_payload = limits.max_payload
        floor_us = int(limits.drop_threshold_floor * 1e6)
        self._drop_after = max(peer_latency_ms * 1000, floor_us) + 20_000
        self._fixed_rate = limits.max_bandwidth / 1e6
        self._min_rate = limits.min_pacing_rate / 1e6
        self._burst_time = limits.pacing_burst * 1e6
        self._rate = self._fixed_rate  # bytes per µs; 0 = not pacing (yet)
        self._burst = self._rate * self._burst_time
        self._tokens = self._burst
        self._tokens_us = now_us
        self._input_start = NEVER
        self._input_bytes = 0
        self._km_pending: bytes | None = None
        self._km_next = NEVER
        self._km_tries = 0
        self._km_resend = int(limits.km_resend_interval * 1e6)
        self._km_max = limits.km_max_resends
        self._quiet_since = now_us  # last new packet or ACK progress
        self._probe_backoff = 1
        self.packets_sent = 0
        self.bytes_sent = 0
        self.packets_retransmitted = 0
        self.packets_dropped = 0

    # ------------------------------------------------------------------ sending

    def send(self, payload: bytes, now_us: int) -> None:
        """Packetise one payload (one live message) and send or queue it."""
        if len(payload) > self.max_payload:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {self.max_payload}")
        buf = self._buf
        ext = self._next
        if self._head < ext and buf[self._head][1] < now_us - self._drop_after:
            self._drop_old(now_us)
        if ext - self._head >= self._capacity:
            self._drop_head(1)
        seq = ext & SEQ_MASK
        msgno = self._msgno
        flags = SOLO_IN_ORDER | msgno
        keys = self.keys
        km: bytes | None = None
        if keys is not None:
            kk = keys.kk
            cipher = keys.ciphers[kk]
            assert cipher is not None
            payload = cipher.crypt(seq, payload)
            flags |= kk << 27
            km = keys.on_packet()
        link = self._link
        packet = HEADER.pack(seq, flags, link.stamp(now_us), link.peer_socket_id) + payload
        buf[ext] = (packet, now_us)
        self._next = ext + 1
        self._quiet_since = now_us
        self._msgno = msgno + 1 if msgno < MSGNO_MASK else 1
        if not self._fixed_rate:
            self._input_bytes += len(packet)
            if now_us - self._input_start >= _RATE_WINDOW:
                self._measure_input(now_us)
            elif self._input_start == NEVER:  # the window starts with the first payload
                self._input_start = now_us
        if self._rate or self._queue or self._rexmit:
            self._queue.append(ext)
            self._pump(now_us)
        else:  # not pacing, nothing waiting: straight out
            link.queue(packet, now_us)
            self.packets_sent += 1
            self.bytes_sent += len(packet)
        if km is not None:
            self._announce(km, now_us)

    def _measure_input(self, now_us: int) -> None:
        """Pacing rate from the input rate of the last second (+25 %)."""
        elapsed = now_us - self._input_start
        rate = max(self._input_bytes / elapsed * _PACING_OVERHEAD, self._min_rate)
        if not self._rate:
            self._tokens_us = now_us
        self._rate = rate
        self._burst = max(rate * self._burst_time, 3000.0)
        self._tokens = min(self._tokens, self._burst) if self._tokens else self._burst
        self._input_start = now_us
        self._input_bytes = 0

    def _pump(self, now_us: int) -> None:
        """Release queued packets as far as the pacing budget allows."""
        rexmit = self._rexmit
        queue = self._queue
        rate = self._rate
        if rate:
            tokens = min(self._burst, self._tokens + (now_us - self._tokens_us) * rate)
            self._tokens_us = now_us
        else:
            tokens = 1e18
        buf = self._buf
        link = self._link
        while tokens > 0 and (rexmit or queue):
            if rexmit:
                seq = rexmit.popleft()
                entry = buf.get(seq)
                if entry is None:
                    continue
                packet = set_rexmit_flag(entry[0])
                self._rexmitted[seq] = now_us
                self.packets_retransmitted += 1
            else:
                entry = buf.get(queue.popleft())
                if entry is None:
                    continue
                packet = entry[0]
                self.packets_sent += 1
                self.bytes_sent += len(packet)
            link.queue(packet, now_us)
            tokens -= len(packet)
        if rate:
            self._tokens = tokens

    def _drop_old(self, now_us: int) -> None:
        """Forget unacknowledged packets nobody can use any more (brief 1.5)."""
        limit = now_us - self._drop_after
        buf = self._buf
        head = self._head
        nxt = self._next
        count = 0
        while head < nxt and buf[head][1] < limit:
            del buf[head]
            head += 1
            count += 1
        if count:
            self._head = head
            self.packets_dropped += count
            self._forget_rexmits(head)

    def _drop_head(self, count: int) -> None:
        for _ in range(count):
            del self._buf[self._head]
            self._head += 1
        self.packets_dropped += count
        self._forget_rexmits(self._head)

    def _forget_rexmits(self, below: int) -> None:
        rexmitted = self._rexmitted
        if rexmitted:
            for seq in [s for s in rexmitted if s < below]:
                del rexmitted[seq]

    # ------------------------------------------------------------------ feedback

    def on_ack(self, ack_number: int, cif: bytes, now_us: int) -> None:
        """ACK: answer full ACKs with ACKACK at once, adopt the RTT, free the buffer."""
        ack_seq, rtt, rtt_var = parse_ack_rtt(cif)
        link = self._link
        if ack_number:
            link.queue(ackack_packet(ack_number, link.stamp(now_us), link.peer_socket_id), now_us)
        if rtt is not None and rtt_var is not None:
            self._rtt.adopt(rtt, rtt_var)
        point = unwrap_seq(ack_seq, self._acked)
        if point <= self._acked or point > self._next:
            return
        buf = self._buf
        for s in range(self._head, point):
            del buf[s]
        self._acked = point
        self._quiet_since = now_us
        self._probe_backoff = 1
        if point > self._head:
            self._head = point
            self._forget_rexmits(point)

    def on_nak(self, cif: bytes, now_us: int) -> None:
        """NAK: queue retransmissions; DROPREQ for the ones we no longer have.

        A packet already *re*-sent less than about one RTT ago is not sent again: the
        (periodic) NAK was written before that copy could arrive. The first
        retransmission is never held back -- a gap is only reported after the
        original's expected arrival, and early on the RTT is a 100 ms guess."""
        rtt = self._rtt
        recent = now_us - max(rtt.rtt // 2, rtt.rtt - rtt.var)
        rexmitted = self._rexmitted
        rexmit = self._rexmit
        gone: list[tuple[int, int]] = []
        for first_w, last_w in parse_loss_list(cif):
            span = seq_diff(last_w, first_w)
            if span < 0:
                continue
            first = unwrap_seq(first_w, self._next)
            last = min(first + span, self._next - 1)
            first = max(first, self._acked)
            if first > last:
                continue
            if first < self._head:
                gone.append((first, min(last, self._head - 1)))
                first = self._head
            for s in range(first, last + 1):
                if rexmitted.get(s, -NEVER) <= recent:
                    rexmitted[s] = now_us
                    rexmit.append(s)
        self._pump(now_us)
        link = self._link
        for first, last in gone:
            link.queue(
                dropreq_packet(0, first, last, link.stamp(now_us), link.peer_socket_id), now_us
            )

    def on_kmrsp(self, cif: bytes) -> None:
        """The receiver's answer to a key refresh: the echo ends re-sending; a
        one-word KM state means it could not use the key."""
        pending = self._km_pending
        if pending is None:
            return
        if bytes(cif[: len(pending)]) == pending or len(cif) < 16:
            self._km_pending = None
            self._km_next = NEVER

    def _announce(self, km: bytes, now_us: int) -> None:
        self._km_pending = km
        self._km_tries = 0
        self._send_km(now_us)

    def _send_km(self, now_us: int) -> None:
        pending = self._km_pending
        if pending is None:
            return
        if self._km_tries > self._km_max:
            self._km_pending = None
            self._km_next = NEVER
            return
        self._km_tries += 1
        link = self._link
        packet = km_packet(ExtendedType.KMREQ, pending, link.stamp(now_us), link.peer_socket_id)
        link.queue(packet, now_us)
        self._km_next = now_us + self._km_resend

    # ------------------------------------------------------------------ timer

    def deadline(self) -> int:
        """Paced packets wait until a whole burst may leave: each wake-up sends a burst
        (which the pacing allows back to back anyway), not the one or two packets a
        quarter of it holds. Every timer wake-up costs the process more than the
        packets it sends (a player's 40 ms batches woke it ~200 times a second)."""
        t = self._km_next
        if (self._queue or self._rexmit) and self._rate:
            wait = (self._burst - self._tokens) / self._rate
            t = min(t, self._tokens_us + max(int(wait), 1))
        elif self._head < self._next:
            t = min(t, self._quiet_since + self._probe_timeout())
        return t

    def _probe_timeout(self) -> int:
        rtt = self._rtt
        rto = max(rtt.rtt + 4 * rtt.var + _PROBE_SYN_SLACK, _PROBE_FLOOR)
        return rto * self._probe_backoff

    def _probe_tail(self, now_us: int) -> None:
        """Re-send what is still unacknowledged after a quiet RTO (see the module doc)."""
        rexmit = self._rexmit
        for seq in range(self._head, self._next):
            rexmit.append(seq)
        self._quiet_since = now_us
        self._probe_backoff = min(self._probe_backoff * 2, _PROBE_MAX_BACKOFF)

    def on_timer(self, now_us: int) -> None:
        self._drop_old(now_us)
        if (
            self._head < self._next
            and not (self._queue or self._rexmit)
            and now_us - self._quiet_since >= self._probe_timeout()
        ):
            self._probe_tail(now_us)
        if self._queue or self._rexmit:
            self._pump(now_us)
        if now_us >= self._km_next:
            self._send_km(now_us)

    # ------------------------------------------------------------------ status

    @property
    def unacknowledged(self) -> int:
        """Packets in the send buffer."""
        return self._next - self._head
