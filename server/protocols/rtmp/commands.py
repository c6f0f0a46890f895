"""NetConnection / NetStream commands (types 20 and 17) and data messages (18 and 15).

Builders return message payloads; :func:`parse_command` reads one. Peers disagree on
details (rtmp2sink sends transaction ID 0 everywhere, some omit the command object),
so parsing only insists on what we need: a string name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import amf0
from .amf0 import AmfValue, EcmaArray
from .errors import ProtocolError

CLIENT_FLASH_VER = "FMLE/3.0 (compatible; FMSc/1.0)"
SERVER_FMS_VER = "FMS/3,0,1,123"
SERVER_CAPABILITIES = 31

# Status codes used by both roles.
CONNECT_SUCCESS = "NetConnection.Connect.Success"
CONNECT_REJECTED = "NetConnection.Connect.Rejected"
CONNECT_CLOSED = "NetConnection.Connect.Closed"
RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"
PUBLISH_START = "NetStream.Publish.Start"
PUBLISH_BAD_NAME = "NetStream.Publish.BadName"
PUBLISH_DENIED = "NetStream.Publish.Denied"
UNPUBLISH_SUCCESS = "NetStream.Unpublish.Success"
PLAY_FAILED = "NetStream.Play.Failed"
PLAY_RESET = "NetStream.Play.Reset"
PLAY_START = "NetStream.Play.Start"
PLAY_STREAM_NOT_FOUND = "NetStream.Play.StreamNotFound"
PLAY_STOP = "NetStream.Play.Stop"
PLAY_UNPUBLISH_NOTIFY = "NetStream.Play.UnpublishNotify"


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded command: name, transaction ID, command object, further arguments."""

    name: str
    transaction_id: float
    command_object: AmfValue
    args: tuple[AmfValue, ...]

    def arg(self, index: int) -> AmfValue:
        """Argument ``index`` after the command object, or None when absent."""
        return self.args[index] if index < len(self.args) else None

    def string_arg(self, index: int) -> str | None:
        """Argument ``index`` if it is a string (stream names, keys)."""
        value = self.arg(index)
        return value if isinstance(value, str) else None


def strip_amf3_format(payload: bytes) -> bytes:
    """Types 15/17 start with a format byte (0) followed by ordinary AMF0 values."""
    if not payload:
        raise ProtocolError("AMF3 message without its format byte")
    return payload[1:]


def parse_command(payload: bytes) -> Command:
    """Decode an AMF0 command body (strip the AMF3 format byte first for type 17)."""
    values = amf0.decode_all(payload)
    if not values or not isinstance(values[0], str):
        raise ProtocolError("command message does not start with a name string")
    tid = values[1] if len(values) > 1 else 0.0
    transaction_id = float(tid) if isinstance(tid, int | float) else 0.0
    command_object = values[2] if len(values) > 2 else None
    return Command(values[0], transaction_id, command_object, tuple(values[3:]))


def as_stream_id(value: AmfValue) -> int | None:
    """A message stream ID from an AMF number, or None if it is not a valid one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value != int(value) or not 0 <= value <= 0xFFFFFFFF:
        return None
    return int(value)


def extract_metadata(values: Sequence[AmfValue]) -> dict[str, AmfValue] | None:
    """The onMetaData mapping of a data message, without the ``@setDataFrame`` wrapper
    (publishers send ``@setDataFrame, onMetaData, {...}``; players see ``onMetaData, {...}``)."""
    if len(values) >= 3 and values[0] == "@setDataFrame" and values[1] == "onMetaData":
        candidate = values[2]
    elif len(values) >= 2 and values[0] == "onMetaData":
        candidate = values[1]
    else:
        return None
    return dict(candidate) if isinstance(candidate, dict) else None


# --------------------------------------------------------------------------- builders


def encode_command(name: str, tid: float, command_object: AmfValue, *args: AmfValue) -> bytes:
    """Encode a command body (transaction IDs are AMF numbers, hence floats)."""
    return amf0.encode_values(name, float(tid), command_object, *args)


def status_info(level: str, code: str, description: str, **extra: AmfValue) -> dict[str, AmfValue]:
    """The info object of ``onStatus``/``_result``/``_error``."""
    info: dict[str, AmfValue] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


def on_status(info: Mapping[str, AmfValue]) -> bytes:
    """``onStatus`` (tid 0, null, info), sent on the message stream it concerns."""
    return encode_command("onStatus", 0, None, dict(info))


def result(tid: float, properties: AmfValue, info: AmfValue) -> bytes:
    """``_result`` answering transaction ``tid``."""
    return encode_command("_result", tid, properties, info)


def error(tid: float, properties: AmfValue, info: AmfValue) -> bytes:
    """``_error`` answering transaction ``tid``."""
    return encode_command("_error", tid, properties, info)


def connect(
    tid: float,
    app: str,
    tc_url: str,
    *,
    flash_ver: str = CLIENT_FLASH_VER,
    fourcc_list: Sequence[str] | None = None,
    extra_properties: Mapping[str, AmfValue] | None = None,
) -> bytes:
    """``connect`` as an FMLE-style publisher sends it; E-RTMP fields are optional."""
    props: dict[str, AmfValue] = {
        "app": app,
        "type": "nonprivate",
        "flashVer": flash_ver,
        "tcUrl": tc_url,
    }
    if fourcc_list is not None:
        props["fourCcList"] = list(fourcc_list)
    if extra_properties:
        props.update(extra_properties)
    return encode_command("connect", tid, props)


def connect_result(tid: float, extra_properties: Mapping[str, AmfValue] | None = None) -> bytes:
    """The server's successful ``connect`` answer, as ffmpeg's own server words it."""
    props: dict[str, AmfValue] = {"fmsVer": SERVER_FMS_VER, "capabilities": SERVER_CAPABILITIES}
    if extra_properties:
        props.update(extra_properties)
    info = status_info("status", CONNECT_SUCCESS, "Connection succeeded.", objectEncoding=0)
    return result(tid, props, info)


def release_stream(tid: float, name: str) -> bytes:
    return encode_command("releaseStream", tid, None, name)


def fc_publish(tid: float, name: str) -> bytes:
    return encode_command("FCPublish", tid, None, name)


def fc_unpublish(tid: float, name: str) -> bytes:
    return encode_command("FCUnpublish", tid, None, name)


def create_stream(tid: float) -> bytes:
    return encode_command("createStream", tid, None)


def publish(tid: float, name: str, publish_type: str = "live") -> bytes:
    return encode_command("publish", tid, None, name, publish_type)


def delete_stream(tid: float, stream_id: int) -> bytes:
    return encode_command("deleteStream", tid, None, float(stream_id))


def set_data_frame(metadata: Mapping[str, AmfValue]) -> bytes:
    """``@setDataFrame, onMetaData, ECMA array``: how a publisher sends stream metadata."""
    return amf0.encode_values("@setDataFrame", "onMetaData", EcmaArray(metadata))


def on_metadata(metadata: Mapping[str, AmfValue]) -> bytes:
    """``onMetaData, ECMA array``: how a server hands a player the stream metadata."""
    return amf0.encode_values("onMetaData", EcmaArray(metadata))


def sample_access() -> bytes:
    """``|RtmpSampleAccess(true, true)``: Flash-era players read the stream only after it."""
    return amf0.encode_values("|RtmpSampleAccess", True, True)
