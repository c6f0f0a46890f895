import av
import pytest

from server.encode import letterbox
from server.encode.conform import fitted_size
from tests.unit.encode.media import picture


@pytest.mark.parametrize(
    ("src", "box", "fitted"),
    [
        ((1920, 1080), (1280, 720), (1280, 720)),
        ((640, 480), (1280, 720), (960, 720)),
        ((1080, 1920), (1280, 720), (404, 720)),
        ((1280, 200), (1280, 720), (1280, 200)),
    ],
)
def test_fitted_size(src: tuple[int, int], box: tuple[int, int], fitted: tuple[int, int]) -> None:
    assert fitted_size(*src, *box) == fitted


def _luma(frame: av.VideoFrame, x: int, y: int) -> int:
    plane = frame.planes[0]
    return bytes(plane)[y * plane.line_size + x]


def test_pillarbox_keeps_the_picture_and_pads_black() -> None:
    out = letterbox(picture(640, 480, shade=200, fmt="rgb24"), 1280, 720)
    assert (out.width, out.height, out.format.name) == (1280, 720, "yuv420p")
    assert _luma(out, 10, 360) <= 20, "left bar is black"
    assert _luma(out, 640, 360) >= 150, "the picture is in the middle"
    again = letterbox(picture(640, 480, shade=200), 1280, 720)
    assert (again.width, again.height) == (1280, 720)


def test_a_conforming_frame_passes_through() -> None:
    frame = picture(1280, 720)
    assert letterbox(frame, 1280, 720) is frame
