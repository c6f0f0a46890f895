"""AMF0 values: the encoding of RTMP commands (type 20) and data messages (type 18).

Decoding is written for hostile input: every read is length-checked, nesting depth
is bounded, counts are checked against the bytes that remain, and the only
exception that can escape is :class:`ProtocolError`. Strings are decoded as UTF-8
with replacement characters, because encoders put Latin-1 into metadata and that is
no reason to drop a stream.

Python mapping (encode and decode are symmetric except where noted):

=======  ===================  ==================================================
marker   AMF0 type            Python
=======  ===================  ==================================================
0x00     number               ``float`` (``int`` is accepted when encoding)
0x01     boolean              ``bool``
0x02     string               ``str`` (encoded as long string above 65535 bytes)
0x03     object               ``dict[str, AmfValue]``
0x05     null                 ``None``
0x06     undefined            :data:`UNDEFINED`
0x07     reference            decoded to the referenced object; never encoded
0x08     ECMA array           :class:`EcmaArray` (a ``dict`` subclass)
0x0A     strict array         ``list`` (``tuple`` is accepted when encoding)
0x0B     date                 :class:`Date`
0x0C     long string          ``str``
0x0D     unsupported          :data:`UNSUPPORTED`
0x0F     XML document         :class:`XmlDocument` (a ``str`` subclass)
0x10     typed object         :class:`TypedObject`
0x11     switch to AMF3       decoded for AMF3 scalars only; never encoded
=======  ===================  ==================================================
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Self, TypeAlias

from .errors import ProtocolError

MAX_DEPTH = 64
"""Deepest nesting accepted; real commands nest two levels, recursion must stay bounded."""

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")
_OBJECT_END = b"\x00\x00\x09"


class _SingleValue:
    """A marker type with one instance, so that ``is`` identifies its value."""

    _name: ClassVar[str]

    def __new__(cls) -> Self:
        instance = cls.__dict__.get("_instance")
        if instance is None:
            instance = super().__new__(cls)
            cls._instance = instance
        return instance

    def __repr__(self) -> str:
        return self._name


class Undefined(_SingleValue):
    """The AMF0 ``undefined`` value (distinct from ``null``, which is ``None``)."""

    _name = "UNDEFINED"


class Unsupported(_SingleValue):
    """The AMF0 ``unsupported`` marker value."""

    _name = "UNSUPPORTED"


UNDEFINED = Undefined()
UNSUPPORTED = Unsupported()


class EcmaArray(dict[str, "AmfValue"]):
    """An associative array; ``onMetaData`` is sent as one, so keep the distinction."""


class XmlDocument(str):
    """A string that is encoded with the XML document marker (0x0F)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Date:
    """AMF0 date: milliseconds since the epoch (UTC) and a time zone that must be 0."""

    milliseconds: float
    timezone: int = 0


@dataclass(slots=True)
class TypedObject:
    """An object with a registered class name (0x10)."""

    class_name: str
    properties: dict[str, AmfValue] = field(default_factory=dict)


AmfValue: TypeAlias = (
    bool
    | int
    | float
    | str
    | Undefined
    | Unsupported
    | Date
    | TypedObject
    | dict[str, "AmfValue"]
    | list["AmfValue"]
    | None
)


# --------------------------------------------------------------------------- decoding


def decode(data: bytes, offset: int = 0) -> tuple[AmfValue, int]:
    """Decode one value starting at ``offset``; return it and the offset after it."""
    decoder = _Decoder(bytes(data), offset)
    return decoder.value(), decoder.pos


def decode_all(data: bytes) -> list[AmfValue]:
    """Decode consecutive values until the data ends (a command or data message body)."""
    decoder = _Decoder(bytes(data), 0)
    values: list[AmfValue] = []
    while decoder.pos < len(decoder.data):
        values.append(decoder.value())
    return values


class _Decoder:
    """Cursor over one message; holds the reference table and the nesting depth."""

    __slots__ = ("data", "depth", "pos", "refs")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos
        self.refs: list[AmfValue] = []
        self.depth = 0

    def take(self, n: int) -> int:
        """Reserve ``n`` bytes and return where they start; a short message is the peer's fault."""
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise ProtocolError("AMF0 value truncated")
        self.pos = start + n
        return start

    def text(self, n: int) -> str:
        start = self.take(n)
        return self.data[start : start + n].decode("utf-8", "replace")

    def u16(self) -> int:
        return int(_U16.unpack_from(self.data, self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self.data, self.take(4))[0])

    def value(self) -> AmfValue:
        marker = self.data[self.take(1)]
        handler = _HANDLERS.get(marker)
        if handler is None:
            raise ProtocolError(f"unknown AMF0 marker 0x{marker:02x}")
        return handler(self)

    def enter(self) -> None:
        """Count one nesting level; refuse before Python's recursion limit is near."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ProtocolError("AMF0 values nested too deeply")

    def properties(self, target: dict[str, AmfValue]) -> None:
        """Read ``key, value`` pairs until ``00 00 09``; a body cut short at a key boundary
        is accepted because some encoders omit the end marker of the last ECMA array."""
        data = self.data
        while self.pos < len(data):
            key = self.text(self.u16())
            if not key and self.pos < len(data) and data[self.pos] == 0x09:
                self.pos += 1
                return
            target[key] = self.value()

    def number(self) -> AmfValue:
        return float(_F64.unpack_from(self.data, self.take(8))[0])

    def boolean(self) -> AmfValue:
        return self.data[self.take(1)] != 0

    def string(self) -> AmfValue:
        return self.text(self.u16())

    def long_string(self) -> AmfValue:
        return self.text(self.u32())

    def xml(self) -> AmfValue:
        return XmlDocument(self.text(self.u32()))

    def object(self) -> AmfValue:
        self.enter()
        return self.keyed({})

    def ecma_array(self) -> AmfValue:
        self.enter()
        self.u32()  # count is only a hint; the end marker is what terminates the body
        return self.keyed(EcmaArray())

    def keyed(self, result: dict[str, AmfValue]) -> AmfValue:
        """The body of an object or ECMA array (level already entered), registered
        before its properties are read so that references inside can point to it."""
        self.refs.append(result)
        self.properties(result)
        self.depth -= 1
        return result

    def strict_array(self) -> AmfValue:
        self.enter()
        count = self.u32()
        if count > len(self.data) - self.pos:  # every value takes at least one byte
            raise ProtocolError("AMF0 strict array count exceeds the message")
        result: list[AmfValue] = []
        self.refs.append(result)
        for _ in range(count):
            result.append(self.value())
        self.depth -= 1
        return result

    def typed_object(self) -> AmfValue:
        self.enter()
        result = TypedObject(self.text(self.u16()))
        self.refs.append(result)
        self.properties(result.properties)
        self.depth -= 1
        return result

    def date(self) -> AmfValue:
        ms, tz = _DATE.unpack_from(self.data, self.take(10))
        return Date(float(ms), int(tz))

    def reference(self) -> AmfValue:
        index = self.u16()
        if index >= len(self.refs):
            raise ProtocolError(f"AMF0 reference {index} to an unknown object")
        return self.refs[index]

    def null(self) -> AmfValue:
        return None

    def undefined(self) -> AmfValue:
        return UNDEFINED

    def unsupported(self) -> AmfValue:
        return UNSUPPORTED

    def amf3(self) -> AmfValue:
        return _decode_amf3_scalar(self)


def _decode_amf3_scalar(dec: _Decoder) -> AmfValue:
    """AMF3 inside AMF0 (marker 0x11): only the scalar types real peers put in commands."""
    marker = dec.data[dec.take(1)]
    if marker <= 3:
        return (UNDEFINED, None, False, True)[marker]
    if marker == 0x04:
        value = _read_u29(dec)
        return value - (1 << 29) if value & (1 << 28) else value
    if marker == 0x05:
        return float(_F64.unpack_from(dec.data, dec.take(8))[0])
    if marker == 0x06:
        header = _read_u29(dec)
        if not header & 1:
            raise ProtocolError("AMF3 string references are not supported")
        return dec.text(header >> 1)
    raise ProtocolError(f"AMF3 value type 0x{marker:02x} is not supported")


def _read_u29(dec: _Decoder) -> int:
    """AMF3 variable-length integer: 7 bits per byte for three bytes, then 8."""
    value = 0
    for _ in range(3):
        byte = dec.data[dec.take(1)]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value
    return (value << 8) | dec.data[dec.take(1)]


_HANDLERS: dict[int, Callable[[_Decoder], AmfValue]] = {
    0x00: _Decoder.number,
    0x01: _Decoder.boolean,
    0x02: _Decoder.string,
    0x03: _Decoder.object,
    0x05: _Decoder.null,
    0x06: _Decoder.undefined,
    0x07: _Decoder.reference,
    0x08: _Decoder.ecma_array,
    0x0A: _Decoder.strict_array,
    0x0B: _Decoder.date,
    0x0C: _Decoder.long_string,
    0x0D: _Decoder.unsupported,
    0x0F: _Decoder.xml,
    0x10: _Decoder.typed_object,
    0x11: _Decoder.amf3,
}


# --------------------------------------------------------------------------- encoding


def encode(value: AmfValue) -> bytes:
    """Encode one value."""
    parts: list[bytes] = []
    _encode_into(value, parts)
    return b"".join(parts)


def encode_values(*values: AmfValue) -> bytes:
    """Encode a sequence of values back to back (a command or data message body)."""
    parts: list[bytes] = []
    for value in values:
        _encode_into(value, parts)
    return b"".join(parts)


def _encode_into(value: AmfValue, parts: list[bytes]) -> None:
    """Append the encoding of ``value``; the order of checks matters (bool is an int,
    EcmaArray is a dict, XmlDocument is a str)."""
    if value is None:
        parts.append(b"\x05")
    elif isinstance(value, bool):
        parts.append(b"\x01\x01" if value else b"\x01\x00")
    elif isinstance(value, int | float):
        parts.append(b"\x00" + _F64.pack(float(value)))
    elif isinstance(value, str):
        _encode_str(value, parts)
    elif isinstance(value, dict):
        _encode_dict(value, parts)
    elif isinstance(value, list | tuple):
        parts.append(b"\x0a" + _U32.pack(len(value)))
        for item in value:
            _encode_into(item, parts)
    else:
        _encode_special(value, parts)


def _encode_str(value: str, parts: list[bytes]) -> None:
    raw = value.encode("utf-8")
    if isinstance(value, XmlDocument):
        parts.append(b"\x0f" + _U32.pack(len(raw)) + raw)
    elif len(raw) > 0xFFFF:
        parts.append(b"\x0c" + _U32.pack(len(raw)) + raw)
    else:
        parts.append(b"\x02" + _U16.pack(len(raw)) + raw)


def _encode_dict(value: dict[str, AmfValue], parts: list[bytes]) -> None:
    if isinstance(value, EcmaArray):
        parts.append(b"\x08" + _U32.pack(len(value)))
    else:
        parts.append(b"\x03")
    _encode_properties(value, parts)


def _encode_properties(props: dict[str, AmfValue], parts: list[bytes]) -> None:
    for key, item in props.items():
        raw = key.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise ValueError("AMF0 property names are limited to 65535 bytes")
        parts.append(_U16.pack(len(raw)) + raw)
        _encode_into(item, parts)
    parts.append(_OBJECT_END)


def _encode_special(value: object, parts: list[bytes]) -> None:
    if isinstance(value, Undefined):
        parts.append(b"\x06")
    elif isinstance(value, Unsupported):
        parts.append(b"\x0d")
    elif isinstance(value, Date):
        parts.append(b"\x0b" + _DATE.pack(value.milliseconds, value.timezone))
    elif isinstance(value, TypedObject):
        raw = value.class_name.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise ValueError("AMF0 class names are limited to 65535 bytes")
        parts.append(b"\x10" + _U16.pack(len(raw)) + raw)
        _encode_properties(value.properties, parts)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")
