"""PyAV encoding shared by channels (playout) and renditions (transcode).

Everything here is CPU-heavy and meant to run in a worker process (``process``), never on
the event loop; what comes out are bus ``Frame``/``CodecConfig`` objects, so the outputs
(HLS, push, record) cannot tell an encoded stream from one an encoder sent.
"""

from server.encode.audio import AudioEncoder
from server.encode.conform import letterbox
from server.encode.process import WorkerGone, WorkerProcess
from server.encode.profile import AudioProfile, VideoProfile, encoder_available
from server.encode.video import VideoEncoder

__all__ = [
    "AudioEncoder",
    "AudioProfile",
    "VideoEncoder",
    "VideoProfile",
    "WorkerGone",
    "WorkerProcess",
    "encoder_available",
    "letterbox",
]
