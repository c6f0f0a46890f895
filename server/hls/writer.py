"""Container adapters for the segmenter: fMP4 (buffer frames, emit moof+mdat on flush)
and MPEG-TS (emit packets per frame), behind one small interface.

The segmenter decides *where* to cut; a writer only turns frames into bytes. fMP4 needs
to see every frame of a fragment before writing its moof, so it buffers until
``flush``; TS writes each frame as it comes, so ``flush`` has nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from server.media import fmp4
from server.media.frame import Codec, CodecConfig, Frame, TrackKind
from server.media.mpegts import TsMuxer

TS_CODECS = frozenset({Codec.H264, Codec.AAC})


class SegmentWriter(Protocol):
    """Turns one configuration's frames into segment bytes."""

    configs: tuple[CodecConfig, ...]
    extension: str  # segment file extension: "m4s" or "ts"

    @property
    def main(self) -> TrackKind:
        """The track that drives cutting (video when there is one)."""
        ...

    def init_segment(self) -> bytes | None:
        """The EXT-X-MAP bytes (fMP4) or None (TS)."""
        ...

    def add(self, frame: Frame, offset: int, *, segment_start: bool) -> bytes:
        """Take one frame; return bytes that are ready now (TS) or b"" (fMP4)."""
        ...

    def flush(self, end_dts: int | None, offset: int) -> bytes:
        """Everything still buffered; ``end_dts`` = raw dts where the next main frame starts."""
        ...


def _main(configs: Sequence[CodecConfig]) -> TrackKind:
    return TrackKind.VIDEO if any(c.track is TrackKind.VIDEO for c in configs) else TrackKind.AUDIO


class Fmp4Writer:
    """fMP4: frames wait for ``flush`` and become one moof+mdat (a part or a chunk)."""

    __slots__ = ("_init", "_muxer", "_pending", "configs", "extension")

    def __init__(self, configs: Sequence[CodecConfig]) -> None:
        self._muxer = fmp4.Fmp4Muxer(configs)
        self._init = self._muxer.init_segment()  # built now: a bad record fails here
        self.configs = tuple(t.config for t in self._muxer.tracks)
        self.extension = "m4s"
        self._pending: dict[TrackKind, list[Frame]] = {t.kind: [] for t in self._muxer.tracks}

    @property
    def main(self) -> TrackKind:
        return _main(self.configs)

    def init_segment(self) -> bytes:
        return self._init

    def add(self, frame: Frame, offset: int, *, segment_start: bool) -> bytes:
        self._pending[frame.track].append(frame)
        return b""

    def flush(self, end_dts: int | None, offset: int) -> bytes:
        pending = self._pending
        if not any(pending.values()):
            return b""
        ends = {self.main: end_dts} if end_dts is not None else None
        data = self._muxer.fragment(pending, end_dts=ends, offset=offset)
        self._pending = {kind: [] for kind in pending}
        return data


class TsWriter:
    """MPEG-TS: each frame is muxed at once; every segment opens with PAT/PMT."""

    __slots__ = ("_muxer", "configs", "extension")

    def __init__(self, configs: Sequence[CodecConfig]) -> None:
        ordered = sorted(configs, key=lambda c: c.track is not TrackKind.VIDEO)
        self._muxer = TsMuxer(ordered)
        self.configs = tuple(ordered)
        self.extension = "ts"

    @property
    def main(self) -> TrackKind:
        return _main(self.configs)

    def init_segment(self) -> None:
        return None

    def add(self, frame: Frame, offset: int, *, segment_start: bool) -> bytes:
        return self._muxer.mux(frame, offset, with_tables=segment_start)

    def flush(self, end_dts: int | None, offset: int) -> bytes:
        return b""


def supported(configs: Sequence[CodecConfig]) -> tuple[CodecConfig, ...]:
    """The configs HLS can carry (first video, first audio; video first), others dropped."""
    chosen: dict[TrackKind, CodecConfig] = {}
    for config in configs:
        if (
            config.track in (TrackKind.VIDEO, TrackKind.AUDIO)
            and config.codec in fmp4.SUPPORTED_CODECS
        ):
            chosen.setdefault(config.track, config)
    return tuple(sorted(chosen.values(), key=lambda c: c.track is not TrackKind.VIDEO))


def make_writer(segment_format: str, configs: Sequence[CodecConfig]) -> SegmentWriter:
    """A TS writer when asked for and every track fits TS (H.264, AAC that ADTS can
    describe), else fMP4. ValueError (MediaFormatError) when the configs are unusable."""
    if segment_format == "ts" and all(c.codec in TS_CODECS for c in configs):
        try:
            return TsWriter(configs)
        except ValueError:
            pass  # e.g. an AudioSpecificConfig ADTS cannot express: fMP4 can
    return Fmp4Writer(configs)
