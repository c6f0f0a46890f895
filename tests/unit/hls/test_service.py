"""The HLS service's packager tasks: a packager that breaks is logged, not lost."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.bus import Registry, StreamGrant
from server.hls.packager import HlsPackager, HlsService
from server.settings import HlsSettings


async def test_a_packager_that_fails_is_logged_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: HlsPackager) -> None:
        raise RuntimeError("segmenter broke")

    monkeypatch.setattr(HlsPackager, "run", broken)
    service = HlsService(HlsSettings())
    grant = StreamGrant("ls_1", "env_1", True, 0, edge_id="edge_1")
    with caplog.at_level(logging.ERROR, logger="relaycast.hls"):
        service.stream_opened(grant, Registry().create("ls_1"), "ses_1")
        for _ in range(3):
            await asyncio.sleep(0)
    [record] = [r for r in caplog.records if r.name == "relaycast.hls"]
    assert record.getMessage() == "hls packager failed"
    assert record.exc_info is not None and "segmenter broke" in str(record.exc_info[1])
    await service.close()
