"""Out of file descriptors: the dispatcher pauses instead of spinning, then recovers.

The descriptors really run out (this test process opens /dev/null until EMFILE), so
the failure comes from the lowest level, wherever the attempt first needs one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from control_api.webhooks import sender
from tests.api.conftest import ApiFactory
from tests.api.test_webhooks import connect_stream, deliveries, until, wait_received, webhook
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.serial
EXHAUSTED_FOR = 2.0


@contextmanager
def no_file_descriptors_left() -> Iterator[None]:
    """The soft limit comes down to what is open plus a few first, so filling the rest
    is quick whatever the hard limit is; both come back afterwards."""
    held: list[int] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, in_use + 64), hard))
    try:
        while True:
            try:
                held.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                break
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_out_of_descriptors_pauses_attempts_and_recovers(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await make_api(
        webhooks={"allow_private_targets": True, "retry_base_delay": 0.5, "retry_max_delay": 1}
    )
    attempts: list[float] = []
    real_post = sender.post

    async def counted(*args: Any) -> sender.Outcome:
        attempts.append(time.monotonic())
        return await real_post(*args)

    monkeypatch.setattr(sender, "post", counted)
    with Receiver() as receiver:
        hook = await webhook(api, receiver.url)
        caplog.set_level(logging.INFO)
        await connect_stream(api)
        caplog.clear()
        with no_file_descriptors_left():
            await asyncio.sleep(EXHAUSTED_FOR)
            lines = len(caplog.records)
            tried = len(attempts)
        assert receiver.received() == []
        # before: ~170 attempts and tracebacks a second; now a pause that grows from 0.25 s
        assert tried <= 8, f"{tried} attempts in {EXHAUSTED_FOR}s while out of descriptors"
        assert lines <= 8, [r.getMessage()[:120] for r in caplog.records[:10]]
        assert all(r.exc_info is None for r in caplog.records)
        assert any("paused" in r.getMessage() for r in caplog.records)
        await wait_received(receiver, 1)  # descriptors back: the event is delivered
    assert receiver.events()[0]["type"] == "stream.connecting"
    [row] = await until(
        lambda: deliveries(api, hook["webhookId"]),
        lambda r: r[0]["status"] == "delivered",
        "the delivery recorded",
    )
    assert row["attempts"] == 1  # attempts that never left this process are not counted
