from server.media.frame import Codec, Frame, TrackKind
from server.playout.interleave import Interleaver
from server.playout.worker import _reason


def _v(pts: int) -> Frame:
    return Frame(TrackKind.VIDEO, Codec.H264, pts, pts, False, b"v")


def _a(pts: int) -> Frame:
    return Frame(TrackKind.AUDIO, Codec.AAC, pts, pts, False, b"a")


def test_audio_ahead_of_its_video_waits_for_it() -> None:
    """A file's audio half a second ahead of its video (the decoder's order) leaves in
    timestamp order: at the head of the publish queue it held the video back."""
    mux = Interleaver()
    mux.add([_a(pts) for pts in range(0, 45_000, 1920)])
    assert mux.ready() == [], "nothing before the video has started"
    mux.add([_v(0), _v(3600)])
    out = mux.ready()
    assert [f.pts for f in out] == [0, 0, 1920, 3600]
    mux.add([_v(pts) for pts in range(7200, 54_000, 3600)])
    out += mux.ready()
    assert [f.pts for f in out] == sorted(f.pts for f in out)
    assert max(f.pts for f in out) <= 43_200 + 1920
    rest = mux.drain()
    assert [f.pts for f in rest] == sorted(f.pts for f in rest) and len(mux) == 0


def test_clear_forgets_both_tracks() -> None:
    mux = Interleaver()
    mux.add([_v(0), _a(0)])
    mux.clear()
    mux.add([_v(3600)])
    assert mux.ready() == [] and len(mux) == 1


def test_a_failure_reason_does_not_name_the_servers_path() -> None:
    path = "/srv/relaycast/media/env_1/med_2"
    reason = _reason(OSError(f"Invalid data found when processing input: {path!r}"), path)
    assert "/srv" not in reason and reason.endswith("input: the file")
