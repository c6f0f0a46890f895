"""The VOD service asks its catalog once per burst of requests, not once per request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.settings import VodSettings
from server.vod.service import VodItem, VodService

ITEM = VodItem("med_1", "ready", True, Path("/nowhere.mp4"), None)


class SlowCatalog:
    """A database that takes a while to answer, counting the questions."""

    def __init__(self) -> None:
        self.calls = 0
        self.answer: VodItem | None = ITEM

    async def vod_item(self, media_id: str) -> VodItem | None:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.answer


def _service(catalog: SlowCatalog, seconds: float = 2.0) -> VodService:
    return VodService(VodSettings(lookup_cache_seconds=seconds), 2.0, catalog)


async def test_concurrent_lookups_of_one_item_share_one_catalog_query() -> None:
    catalog = SlowCatalog()
    service = _service(catalog)
    found = await asyncio.gather(*(service.item("med_1") for _ in range(200)))
    assert catalog.calls == 1 and set(found) == {ITEM}
    await service.item("med_1")
    assert catalog.calls == 1  # remembered


async def test_an_expired_answer_is_asked_again_once_for_the_whole_burst() -> None:
    catalog = SlowCatalog()
    service = _service(catalog, seconds=0.0)  # nothing remembered between bursts
    await asyncio.gather(*(service.item("med_1") for _ in range(50)))
    catalog.answer = None  # deleted meanwhile
    found = await asyncio.gather(*(service.item("med_1") for _ in range(50)))
    assert catalog.calls == 2 and set(found) == {None}


async def test_a_failed_query_fails_its_waiters_and_is_not_remembered() -> None:
    class Broken(SlowCatalog):
        async def vod_item(self, media_id: str) -> VodItem | None:
            await super().vod_item(media_id)
            if self.calls == 1:
                raise OSError("database gone")
            return self.answer

    catalog = Broken()
    service = _service(catalog)
    outcomes = await asyncio.gather(
        *(service.item("med_1") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes) and catalog.calls == 1
    assert await service.item("med_1") == ITEM and catalog.calls == 2
