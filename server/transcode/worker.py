"""The worker process of one transcoded stream: pipe in, ``Pipeline``, pipe out.

Runs in a spawned child (``server.encode.WorkerProcess``), so the encoders' CPU time
and the GIL they hold never touch the event loop. EOF on the pipe ends it.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

import av

from server.media.frame import CodecConfig, Frame

from .messages import RESTART, Failed, Job, Ready
from .pipeline import Pipeline


def run(conn: Connection, job: Job) -> None:
    """Open the encoders, say ``Ready``, then answer every source item with a ``Batch``."""
    try:
        pipeline = Pipeline(job)
    except (ValueError, OSError, av.FFmpegError) as exc:
        conn.send(Failed(f"cannot open the encoders: {exc}"))
        return
    conn.send(Ready(pipeline.video_configs, pipeline.audio_config))
    while True:
        message = conn.recv()
        try:
            if isinstance(message, Frame):
                conn.send(pipeline.feed(message))
            elif isinstance(message, CodecConfig):
                pipeline.config(message)
            elif message == RESTART:
                conn.send(pipeline.restart())
        except (ValueError, OSError, av.FFmpegError) as exc:
            conn.send(Failed(f"transcoding failed: {exc}"))
            return
