"""The caller's side of the HSv5 handshake (brief 3.1-3.5): induction, conclusion
with HSREQ/SID/KMREQ, and the checks on the listener's answer.

Pure state: :class:`SrtConnection` re-sends :meth:`CallerHandshake.request` every
``handshake_resend`` seconds, feeds every handshake it receives to
:meth:`CallerHandshake.on_handshake` and acts on the returned :class:`Step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .crypto import KEY_LENGTHS, KM_STATE_BADSECRET, RandomBytes, ReceiveKeys, SendKeys
from .errors import ProtocolError
from .handshake import (
    HS_MAGIC,
    OUR_SRT_FLAGS,
    SRT_VERSION,
    ExtFlag,
    ExtType,
    Handshake,
    HandshakeType,
    SrtHandshakeExt,
    encode_string_ext,
    is_rejection,
    parse_srt_hs_ext,
)
from .limits import SrtLimits

_INDUCTION_EXT = 2  # "UDT_DGRAM" in the version-4 induction request


class Step(Enum):
    IGNORED = "ignored"
    SEND_CONCLUSION = "send_conclusion"
    ESTABLISHED = "established"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CallerResult:
    """What the handshake negotiated."""

    peer_socket_id: int
    latency_ms: int
    peer_latency_ms: int
    mtu: int
    send_keys: SendKeys | None
    receive_keys: ReceiveKeys | None


class CallerHandshake:
    """Induction -> conclusion -> established/rejected."""

    def __init__(
        self,
        *,
        socket_id: int,
        isn: int,
        limits: SrtLimits,
        streamid: str,
        passphrase: bytes | None,
        pbkeylen: int,
        latency_ms: int,
        peer_latency_ms: int,
        peer_ip: bytes,
        random_bytes: RandomBytes,
    ) -> None:
        self.socket_id = socket_id
        self.isn = isn
        self._limits = limits
        self._streamid = streamid
        self._passphrase = passphrase
        self._pbkeylen = pbkeylen
        self._latency = latency_ms
        self._peer_latency = peer_latency_ms
        self._peer_ip = peer_ip
        self._random = random_bytes
        self._keys: SendKeys | None = None
        self.concluding = False
        self.result: CallerResult | None = None
        self.reject_code = 0
        self.request = Handshake(
            version=4,
            encryption=0,
            extension=_INDUCTION_EXT,
            isn=isn,
            mtu=limits.mtu,
            window=limits.flow_window,
            hs_type=HandshakeType.INDUCTION,
            socket_id=socket_id,
            cookie=0,
            peer_ip=peer_ip,
        )

    def on_handshake(self, hs: Handshake) -> Step:
        if is_rejection(hs.hs_type):
            self.reject_code = hs.hs_type
            return Step.REJECTED
        if hs.hs_type == HandshakeType.INDUCTION and not self.concluding:
            self._on_induction(hs)
            return Step.SEND_CONCLUSION
        if hs.hs_type == HandshakeType.CONCLUSION and self.concluding:
            self.result = self._on_conclusion(hs)
            return Step.ESTABLISHED
        return Step.IGNORED

    def _on_induction(self, hs: Handshake) -> None:
        if hs.version != 5 or hs.extension != HS_MAGIC:
            raise ProtocolError(
                f"induction answer v{hs.version} ext 0x{hs.extension:04x}: not an HSv5 listener"
            )
        key_length = 0
        extensions: list[tuple[int, bytes]] = []
        ext_flags = ExtFlag.HSREQ
        hsreq = SrtHandshakeExt(SRT_VERSION, OUR_SRT_FLAGS, self._latency, self._peer_latency)
        extensions.append((ExtType.HSREQ, hsreq.encode()))
        if self._streamid:
            extensions.append((ExtType.SID, encode_string_ext(self._streamid)))
            ext_flags |= ExtFlag.CONFIG
        if self._passphrase is not None:
            key_length = self._pbkeylen
            if not key_length:  # adopt what the listener advertises, else AES-128
                key_length = hs.encryption * 8 if hs.encryption * 8 in KEY_LENGTHS else 16
            limits = self._limits
            self._keys = SendKeys.create(
                self._passphrase,
                key_length,
                self._random,
                refresh_rate=limits.km_refresh_rate,
                preannounce=limits.km_preannounce,
            )
            extensions.append((ExtType.KMREQ, self._keys.km))
            ext_flags |= ExtFlag.KMREQ
        self.request = Handshake(
            version=5,
            encryption=key_length // 8,
            extension=int(ext_flags),
            isn=self.isn,
            mtu=self._limits.mtu,
            window=self._limits.flow_window,
            hs_type=HandshakeType.CONCLUSION,
            socket_id=self.socket_id,
            cookie=hs.cookie,
            peer_ip=self._peer_ip,
            extensions=tuple(extensions),
        )
        self.concluding = True

    def _on_conclusion(self, hs: Handshake) -> CallerResult:
        if hs.version != 5:
            raise ProtocolError(f"conclusion answer with version {hs.version}")
        if hs.socket_id == 0:
            raise ProtocolError("conclusion answer without a socket ID")
        exts = hs.extension_map()
        if ExtType.HSRSP not in exts:
            raise ProtocolError("conclusion answer without HSRSP")
        hsrsp = parse_srt_hs_ext(exts[ExtType.HSRSP])
        keys = self._keys
        receive_keys: ReceiveKeys | None = None
        if keys is not None:
            kmrsp = exts.get(ExtType.KMRSP)
            if kmrsp is None:
                raise ProtocolError("listener answered KMREQ without KMRSP")
            if kmrsp != keys.km:
                state = int.from_bytes(kmrsp[:4], "big") if len(kmrsp) >= 4 else -1
                detail = "bad passphrase" if state == KM_STATE_BADSECRET else f"state {state}"
                raise ProtocolError(f"listener refused the key material ({detail})")
            receive_keys = ReceiveKeys.mirror(keys, self._passphrase or b"")
        return CallerResult(
            peer_socket_id=hs.socket_id,
            latency_ms=max(self._latency, hsrsp.send_latency_ms),
            peer_latency_ms=max(self._peer_latency, hsrsp.recv_latency_ms),
            mtu=min(self._limits.mtu, hs.mtu) if hs.mtu >= 76 else self._limits.mtu,
            send_keys=keys,
            receive_keys=receive_keys,
        )
