"""AMF0: every marker round-trips, hand-written vectors decode, hostile input is refused."""

from __future__ import annotations

import math
import struct

import pytest

from server.protocols.rtmp import ProtocolError, amf0
from server.protocols.rtmp.amf0 import (
    UNDEFINED,
    UNSUPPORTED,
    Date,
    EcmaArray,
    TypedObject,
    XmlDocument,
)


def s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def key(text: str) -> bytes:
    return s(text)


def num(value: float) -> bytes:
    return b"\x00" + struct.pack(">d", value)


def string(text: str) -> bytes:
    return b"\x02" + s(text)


END = b"\x00\x00\x09"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.5, num(1.5)),
        (True, b"\x01\x01"),
        (False, b"\x01\x00"),
        ("live", b"\x02\x00\x04live"),
        ({"a": 1.0}, b"\x03" + key("a") + num(1.0) + END),
        (None, b"\x05"),
        (UNDEFINED, b"\x06"),
        (EcmaArray(width=1280.0), b"\x08\x00\x00\x00\x01" + key("width") + num(1280.0) + END),
        (["a", 2.0], b"\x0a\x00\x00\x00\x02" + string("a") + num(2.0)),
        (Date(1_700_000_000_000.0, 0), b"\x0b" + struct.pack(">dh", 1_700_000_000_000.0, 0)),
        ("x" * 70000, b"\x0c" + struct.pack(">I", 70000) + b"x" * 70000),
        (UNSUPPORTED, b"\x0d"),
        (XmlDocument("<a/>"), b"\x0f\x00\x00\x00\x04<a/>"),
        (TypedObject("Cls", {"v": 1.0}), b"\x10" + s("Cls") + key("v") + num(1.0) + END),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_marker_encodes_to_vector_and_back(value: amf0.AmfValue, encoded: bytes) -> None:
    assert amf0.encode(value) == encoded
    decoded, end = amf0.decode(encoded)
    assert end == len(encoded)
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, int | float)


def test_int_encodes_as_number() -> None:
    assert amf0.encode(3) == num(3.0)
    assert amf0.decode(amf0.encode(3))[0] == 3.0


def test_tuple_encodes_as_strict_array() -> None:
    assert amf0.encode(("a",)) == amf0.encode(["a"])  # type: ignore[arg-type]


def test_undefined_and_unsupported_are_singletons() -> None:
    assert amf0.Undefined() is UNDEFINED
    assert amf0.Unsupported() is UNSUPPORTED
    assert repr(UNDEFINED) == "UNDEFINED"


def test_captured_ffmpeg_connect_decodes() -> None:
    """connect as ffmpeg 5.1 sends it (layout from a capture, strings shortened)."""
    body = (
        string("connect")
        + num(1.0)
        + b"\x03"
        + key("app")
        + string("live")
        + key("type")
        + string("nonprivate")
        + key("flashVer")
        + string("FMLE/3.0 (compatible; Lavf59.27.100)")
        + key("tcUrl")
        + string("rtmp://127.0.0.1:1935/live")
        + END
    )
    values = amf0.decode_all(body)
    assert values == [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
            "tcUrl": "rtmp://127.0.0.1:1935/live",
        },
    ]
    assert amf0.encode_values(*values) == body


def test_captured_on_metadata_decodes() -> None:
    body = bytes.fromhex(
        "02000d40736574446174614672616d65"  # "@setDataFrame"
        "02000a6f6e4d65746144617461"  # "onMetaData"
        "0800000003"  # ECMA array, count 3
        "0008"
        "6475726174696f6e"
        "00"
        "0000000000000000"  # duration: 0.0
        "0005"
        "7769647468"
        "00"
        "4094000000000000"  # width: 1280.0
        "000c"
        "766964656f636f6465636964"
        "00"
        "401c000000000000"  # videocodecid: 7.0
        "000009"
    )
    values = amf0.decode_all(body)
    assert values[:2] == ["@setDataFrame", "onMetaData"]
    assert values[2] == {"duration": 0.0, "width": 1280.0, "videocodecid": 7.0}
    assert isinstance(values[2], EcmaArray)


def test_ecma_array_without_end_marker_is_tolerated() -> None:
    body = b"\x08\x00\x00\x00\x01" + key("a") + num(1.0)
    assert amf0.decode_all(body) == [{"a": 1.0}]


def test_reference_resolves_to_earlier_object() -> None:
    body = b"\x0a\x00\x00\x00\x02" + b"\x03" + key("k") + string("v") + END + b"\x07\x00\x01"
    (value,) = amf0.decode_all(body)
    assert isinstance(value, list)
    assert value[0] == {"k": "v"}
    assert value[1] is value[0]


def test_amf3_scalars_after_switch_marker() -> None:
    assert amf0.decode_all(b"\x11\x00\x11\x01\x11\x02\x11\x03") == [UNDEFINED, None, False, True]
    assert amf0.decode(b"\x11\x04\x7f")[0] == 127
    assert amf0.decode(b"\x11\x04\x81\x00")[0] == 128
    assert amf0.decode(b"\x11\x04\xff\xff\xff\xff")[0] == -1
    assert amf0.decode(b"\x11\x05" + struct.pack(">d", 2.5))[0] == 2.5
    assert amf0.decode(b"\x11\x06\x07abc")[0] == "abc"


def test_latin1_strings_decode_with_replacement() -> None:
    assert amf0.decode(b"\x02\x00\x02\xe9t")[0] == "\ufffdt"


def test_nan_round_trips() -> None:
    value = amf0.decode(amf0.encode(math.nan))[0]
    assert isinstance(value, float) and math.isnan(value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",  # short number
        b"\x02\x00\x05ab",  # short string
        b"\x04",  # movieclip: reserved
        b"\x0e",  # recordset: reserved
        b"\x09",  # object end outside an object
        b"\x12",  # unknown
        b"\x07\x00\x00",  # reference with an empty table
        b"\x0a\xff\xff\xff\xff\x05",  # strict array count beyond the data
        b"\x03" + key("a"),  # property without a value
        b"\x11\x07",  # AMF3 type we do not decode
        b"\x11\x06\x02",  # AMF3 string reference
        b"\x0b\x00",  # short date
    ],
)
def test_malformed_values_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        amf0.decode(data)


def test_nesting_depth_is_bounded() -> None:
    data = b"\x0a\x00\x00\x00\x01" * 100 + b"\x05"
    with pytest.raises(ProtocolError, match="nested"):
        amf0.decode(data)
    shallow = b"\x0a\x00\x00\x00\x01" * 10 + b"\x05"
    assert amf0.decode(shallow)[1] == len(shallow)


def test_encoding_rejects_unknown_types() -> None:
    with pytest.raises(TypeError):
        amf0.encode(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        amf0.encode({"k" * 70000: 1})
