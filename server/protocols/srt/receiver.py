"""Live receiver (brief 1.3-1.5): receive buffer, loss list, ACK/NAK scheduling,
TSBPD delivery with too-late drop, drop requests.

Sequence numbers are unwrapped on arrival (:mod:`seqno`), so the buffer is a dict
keyed by extended sequence numbers and every comparison is a plain ``<``. State,
with ``next <= ack <= max + 1``:

* ``next``: the next sequence number to deliver;
* ``ack``: the first sequence number not received (everything in [next, ack) is
  buffered or was given up) -- the value full ACKs carry;
* ``max``: the highest sequence number received;
* ``first_after``: the smallest buffered number above ``ack`` (None when nothing
  waits behind a hole); its play time is the too-late deadline of the hole at ack.

Per packet the work is one struct unpack (done by the connection), a few integer
operations and one dict insert; in-order packets with immediate delivery skip the
buffer entirely. An adapter that consumes payloads in batches can have them appended
to a list of its own (:attr:`LiveReceiver.sink`) instead of one ``DataReceived``
object per packet. ACKs and periodic NAKs are produced on the timer, not per packet;
only a newly detected gap sends an immediate NAK.
"""

from __future__ import annotations

from collections import deque

from .control import full_ack_packet, light_ack_packet, nak_packet, parse_drop_request
from .crypto import ReceiveKeys
from .events import DataReceived, Event, PacketsDropped
from .limits import SrtLimits
from .link import NEVER, Link, Rtt
from .packet import HEADER_SIZE, REXMIT_FLAG
from .seqno import SEQ_HALF, SEQ_MASK, SEQ_MOD, TS_HALF, TS_MASK, TS_MOD, unwrap_seq

_ACK_HISTORY = 1024  # libsrt keeps as many ACK numbers for RTT samples


class LiveReceiver:
    """Receiving half of a live connection."""

    def __init__(
        self,
        link: Link,
        rtt: Rtt,
        events: list[Event],
        *,
        isn: int,
        latency_ms: int,
        limits: SrtLimits,
        keys: ReceiveKeys | None,
        now_us: int,
    ) -> None:
        self._link = link
        self._rtt = rtt
        self._events = events
        self.keys = keys
        # payloads go here instead of DataReceived events when set; None entries mark
        # where packets were given up (the PacketsDropped event reports them too)
        self.sink: list[bytes | None] | None = None
        self.latency_ms = latency_ms
        self._latency = latency_ms * 1000
        self._tsbpd = limits.tsbpd_delivery
        self._window = limits.flow_window
        self._syn = int(limits.syn_interval * 1e6)
        self._light_every = limits.light_ack_packets
        self._nak_floor = int(limits.min_nak_interval * 1e6)
        self._nak_bytes = limits.max_payload
        self._next = isn
        self._ack = isn
        self._max = isn - 1
        self._buf: dict[int, tuple[int, bytes]] = {}
        self._loss: set[int] = set()
        self._first_after: int | None = None
        # immediate delivery: (first packet after a gap, when it revealed the gap), in
        # sequence order; the head is the detection of the hole at ``ack``
        self._revealed: deque[tuple[int, int]] | None = None if self._tsbpd else deque()
        self._based = False
        self._base = 0
        self._ts_ref = 0
        self._ack_number = 0
        self._ack_times: dict[int, tuple[int, int]] = {}  # ACK number -> (sent, ack)
        self._last_acked = isn  # ack value of the last full ACK
        self._confirmed = isn  # highest ack value the sender confirmed with ACKACK
        self._last_ack_us = now_us
        self._light_at = self._light_every  # packets_received value for a light ACK
        self._last_nak_us = 0
        self._rate_start = -1
        self._rate_packets = 0  # packets_received / bytes_received at the window start
        self._rate_bytes = 0
        self._packet_rate = 0
        self._byte_rate = 0
        self.packets_received = 0
        self.bytes_received = 0
        self.packets_lost = 0
        self.packets_retransmitted = 0
        self.packets_dropped = 0
        self.packets_discarded = 0
        self.packets_undecryptable = 0
        self.packets_delivered = 0

    # ------------------------------------------------------------------ data path

    def on_data(self, datagram: bytes, seq: int, flags: int, ts: int, now_us: int) -> None:
        """One data packet (header already unpacked by the connection)."""
        self.packets_received += 1
        ack = self._ack
        d = (seq - ack) & SEQ_MASK
        if d >= SEQ_HALF:
            d -= SEQ_MOD
        ext = ack + d
        buf = self._buf
        if d < 0 or ext in buf:
            self.packets_discarded += 1
            return
        if ext - self._next >= self._window:
            self.packets_discarded += 1
            return
        payload = datagram[HEADER_SIZE:]
        kk = (flags >> 27) & 3
        if kk:
            payload = self._decrypt(kk, seq, payload)
        if flags & REXMIT_FLAG:
            self.packets_retransmitted += 1
        self.bytes_received += len(payload)
        if self._based:
            tr = self._ts_ref
            dt = (ts - tr) & TS_MASK
            if dt >= TS_HALF:
                dt -= TS_MOD
            ts_ext = tr + dt
            if dt > 0:
                self._ts_ref = ts_ext
        else:
            ts_ext = self._ts_ref = ts
            self._base = now_us - ts
            self._based = True
        mx = self._max
        if ext > mx:
            if ext > mx + 1:
                self._on_gap(mx + 1, ext - 1, now_us)
                if self._revealed is not None:
                    self._revealed.append((ext, now_us))
            self._max = ext
        else:
            self._loss.discard(ext)
        if d != 0 or self._first_after is not None:  # out of order, or behind a hole
            buf[ext] = (ts_ext, payload)
            self._advance(ext)
            self._deliver(now_us)
        elif self._tsbpd:  # in order: extend the contiguous run, deliver what is due
            buf[ext] = (ts_ext, payload)
            self._ack = ext + 1
            if self._base + self._latency + buf[self._next][0] <= now_us:
                self._deliver(now_us)
        else:  # in order, nothing buffered: deliver without touching the buffer
            self._ack = self._next = ext + 1
            if payload:
                self.packets_delivered += 1
                sink = self.sink
                if sink is None:
                    self._events.append(DataReceived(payload, ts_ext, seq))
                else:
                    sink.append(payload)
        if self.packets_received >= self._light_at:
            self._send_light_ack(now_us)

    def _decrypt(self, kk: int, seq: int, payload: bytes) -> bytes:
        keys = self.keys
        cipher = keys.ciphers[kk] if keys is not None else None
        if cipher is None:
            # no key for it: keep the slot (so ARQ does not chase it) but deliver nothing
            self.packets_undecryptable += 1
            return b""
        return cipher.crypt(seq, payload)

    def _advance(self, ext: int) -> None:
        """Update ``ack`` / ``first_after`` after buffering ``ext``."""
        ack = self._ack
        fa = self._first_after
        if ext != ack:
            if fa is None or ext < fa:
                self._first_after = ext
            return
        ack += 1
        if fa is not None and ack == fa:
            buf = self._buf
            while ack in buf:
                ack += 1
            self._first_after = self._scan_first_after(ack)
        self._ack = ack

    def _scan_first_after(self, ack: int) -> int | None:
        buf = self._buf
        s = ack + 1
        mx = self._max
        while s <= mx:
            if s in buf:
                return s
            s += 1
        return None

    def _deliver(self, now_us: int) -> None:
        """Deliver what is due; skip a hole whose deadline (:meth:`_hole_deadline`)
        has come."""
        buf = self._buf
        events = self._events
        sink = self.sink
        nxt = self._next
        ack = self._ack
        tsbpd = self._tsbpd
        offset = self._base + self._latency
        while True:
            if nxt < ack:
                item = buf.get(nxt)
                if item is None:  # given up (too late or DROPREQ)
                    nxt += 1
                    continue
                if tsbpd and offset + item[0] > now_us:
                    break
                del buf[nxt]
                if item[1]:
                    self.packets_delivered += 1
                    if sink is None:
                        events.append(DataReceived(item[1], item[0], nxt & SEQ_MASK))
                    else:
                        sink.append(item[1])
                nxt += 1
                continue
            fa = self._first_after
            if fa is None or self._hole_deadline(offset + buf[fa][0]) > now_us:
                break
            self._skip(fa, "too late")
            ack = self._ack
        self._next = nxt

    def _hole_deadline(self, play_time: int) -> int:
        """When the hole at ``ack`` is given up: at the play time of the first packet
        after it (``play_time``) -- and, with immediate delivery, not before the
        retransmissions its NAKs asked for could arrive.

        A sender that paces a burst (a keyframe) sends its packets tens of ms after
        their timestamps; a loss among them is detected when the packets behind it
        are already at or past their play time. Giving it up at once makes the
        (delayed, paced) retransmission useless -- the ACK past the hole reaches the
        sender first and it forgets the packet. So the hole waits at least two NAK
        periods (the immediate NAK's answer and one periodic NAK's) after it was
        detected, never longer than the latency. libsrt 1.5 recovers those packets
        (issue 21, SRT-B); ingest delivers at once anyway, so nothing plays late."""
        revealed = self._revealed
        if not revealed:
            return play_time
        ack = self._ack
        while revealed and revealed[0][0] <= ack:
            revealed.popleft()
        if not revealed:
            return play_time
        hold = min(2 * self._nak_interval(), self._latency)
        held = revealed[0][1] + hold
        return held if held > play_time else play_time

    def _skip(self, upto: int, reason: str) -> None:
        """Give up everything in [ack, upto) and move the ACK point past it."""
        ack = self._ack
        if upto <= ack:
            return
        loss = self._loss
        buf = self._buf
        count = 0
        for s in range(ack, upto):
            if s not in buf:
                count += 1
                loss.discard(s)
        self.packets_dropped += count
        self._events.append(PacketsDropped(ack & SEQ_MASK, count, reason))
        if self.sink is not None:
            self.sink.append(None)
        if upto > self._max + 1:
            self._max = upto - 1
        ack = upto
        while ack in buf:
            ack += 1
        self._ack = ack
        fa = self._first_after
        if fa is None or fa <= ack:
            self._first_after = self._scan_first_after(ack)

    def _on_gap(self, first: int, last: int, now_us: int) -> None:
        """New loss detected: record it and report it at once (immediate NAK)."""
        self.packets_lost += last - first + 1
        loss = self._loss
        if not loss:  # the periodic NAK period starts with the first open loss
            self._last_nak_us = now_us
        loss.update(range(first, last + 1))
        link = self._link
        link.queue(
            nak_packet(((first, last),), link.stamp(now_us), link.peer_socket_id, self._nak_bytes),
            now_us,
        )

    # ------------------------------------------------------------------ control

    def on_ackack(self, ack_number: int, now_us: int) -> None:
        entry = self._ack_times.pop(ack_number, None)
        if entry is not None:
            self._rtt.sample(now_us - entry[0])
            if entry[1] > self._confirmed:
                self._confirmed = entry[1]

    def on_dropreq(self, cif: bytes, now_us: int) -> None:
        """The sender gave up [first, last]: stop asking for it; if it blocks the
        ACK point, skip it now instead of waiting for the too-late deadline."""
        first_w, last_w = parse_drop_request(cif)
        first = unwrap_seq(first_w, self._ack)
        last = first + ((last_w - first_w) & SEQ_MASK)
        if last - self._next >= self._window or last < self._ack:
            return
        loss = self._loss
        if loss:
            for s in range(max(first, self._ack), last + 1):
                loss.discard(s)
        if first <= self._ack:
            self._skip(last + 1, "dropped by sender")
            self._deliver(now_us)

    # ------------------------------------------------------------------ timer

    def deadline(self) -> int:
        """Earliest time (µs) at which :meth:`on_timer` has work."""
        ack = self._ack
        if ack != self._last_acked:
            t = self._last_ack_us + self._syn
        elif ack != self._confirmed:
            t = self._ack_due()
        else:
            t = NEVER
        if self._loss:
            t = min(t, self._last_nak_us + self._nak_interval())
        if self._next < ack:
            item = self._buf.get(self._next)
            if item is not None:
                d = self._base + self._latency + item[0]
                return d if d < t else t
        fa = self._first_after
        if fa is not None:
            d = self._hole_deadline(self._base + self._latency + self._buf[fa][0])
            if d < t:
                t = d
        return t

    def on_timer(self, now_us: int) -> None:
        self._deliver(now_us)
        if now_us >= self._ack_due():
            self._send_full_ack(now_us)
        if self._loss and now_us >= self._last_nak_us + self._nak_interval():
            self._send_periodic_nak(now_us)

    def _ack_due(self) -> int:
        """A full ACK is due one SYN after the last when the ACK point moved, and is
        repeated after two RTTs while the sender has not confirmed it (a lost ACK
        would otherwise leave the sender holding packets until they age out)."""
        ack = self._ack
        if ack != self._last_acked:
            return self._last_ack_us + self._syn
        if ack != self._confirmed:
            return self._last_ack_us + max(self._syn, 2 * self._rtt.rtt)
        return NEVER

    def _nak_interval(self) -> int:
        rtt = self._rtt
        return max(self._nak_floor, (rtt.rtt + 4 * rtt.var) // 2)

    def _send_full_ack(self, now_us: int) -> None:
        number = (self._ack_number + 1) & 0xFFFFFFFF or 1
        self._ack_number = number
        times = self._ack_times
        times[number] = (now_us, self._ack)
        if len(times) > _ACK_HISTORY:
            del times[next(iter(times))]
        self._update_rates(now_us)
        rtt = self._rtt
        link = self._link
        packet = full_ack_packet(
            number,
            self._ack,
            rtt.rtt,
            rtt.var,
            max(2, self._window - len(self._buf)),
            self._packet_rate,
            max(self._packet_rate, 1000),
            self._byte_rate,
            link.stamp(now_us),
            link.peer_socket_id,
        )
        link.queue(packet, now_us)
        self._last_acked = self._ack
        self._last_ack_us = now_us
        self._light_at = self.packets_received + self._light_every

    def _send_light_ack(self, now_us: int) -> None:
        link = self._link
        link.queue(light_ack_packet(self._ack, link.stamp(now_us), link.peer_socket_id), now_us)
        self._light_at = self.packets_received + self._light_every

    def _update_rates(self, now_us: int) -> None:
        """Receive rates for the ACK, measured over windows of about one second."""
        if self._rate_start < 0:
            self._rate_start = now_us
            self._rate_packets, self._rate_bytes = self.packets_received, self.bytes_received
            return
        elapsed = now_us - self._rate_start
        if elapsed >= 1_000_000:
            packets, octets = self.packets_received, self.bytes_received
            self._packet_rate = (packets - self._rate_packets) * 1_000_000 // elapsed
            self._byte_rate = (octets - self._rate_bytes) * 1_000_000 // elapsed
            self._rate_start = now_us
            self._rate_packets, self._rate_bytes = packets, octets

    def _send_periodic_nak(self, now_us: int) -> None:
        """Re-send the whole loss list (as much as fits one packet)."""
        ranges: list[tuple[int, int]] = []
        for s in sorted(self._loss):
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1] = (ranges[-1][0], s)
            else:
                ranges.append((s, s))
        link = self._link
        link.queue(
            nak_packet(ranges, link.stamp(now_us), link.peer_socket_id, self._nak_bytes), now_us
        )
        self._last_nak_us = now_us

    # ------------------------------------------------------------------ status

    @property
    def buffered(self) -> int:
        return len(self._buf)
