"""Media library repositories on SQLite and PostgreSQL: folders, tags, media, uploads, tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_api.store import Store
from control_api.store.folders import FolderCycle, FolderNotEmpty, UnknownFolder
from control_api.store.media import UnknownMedia
from control_api.store.models import Media
from control_api.store.tags import TagExists
from control_api.store.uploads import NewUpload, media_path


async def _env(store: Store, name: str = "default") -> str:
    env, _ = await store.environments.ensure(name)
    return env.id


async def _media(store: Store, env: str, n: int) -> list[str]:
    """Media the way an upload makes them."""
    ids = []
    for index in range(n):
        upload = await store.uploads.create(
            env, NewUpload(10, "", f"f{index}.mp4", None), timedelta(hours=1)
        )
        ids.append((await store.uploads.complete(upload)).id)
    return ids


async def test_uploads_offsets_expiry_and_completion(store: Store) -> None:
    env = await _env(store)
    folder = await store.folders.create(env, "inbox", None)
    upload = await store.uploads.create(
        env, NewUpload(100, "filename eA==", "x.mp4", folder.id), timedelta(hours=1)
    )
    assert upload.path == media_path(env, upload.media_id)
    expires = await store.uploads.advance(upload.id, 40, timedelta(hours=2))
    found = await store.uploads.get(env, upload.id)
    assert found is not None and found.received == 40 and found.expires_at == expires
    assert await store.uploads.get(await _env(store, "other"), upload.id) is None
    media = await store.uploads.complete(found)
    assert media.id == upload.media_id and media.status == "processing"
    assert media.folder_id == folder.id and media.size_bytes == 100
    assert await store.uploads.unfinished() == []
    later = datetime.now(UTC) + timedelta(hours=3)
    assert [u.id for u in await store.uploads.expired(later)] == [upload.id]
    await store.uploads.delete(upload.id)
    assert await store.uploads.get(env, upload.id) is None
    assert await store.media.get(env, media.id) is not None  # the item outlives its upload


async def test_expired_unfinished_uploads_are_invisible(store: Store) -> None:
    env = await _env(store)
    upload = await store.uploads.create(env, NewUpload(5, "", "a", None), timedelta(seconds=-1))
    assert await store.uploads.get(env, upload.id) is None


async def test_folder_tree_cycles_and_deletes(store: Store) -> None:
    env = await _env(store)
    top = await store.folders.create(env, "top", None)
    sub = await store.folders.create(env, "sub", top.id)
    leaf = await store.folders.create(env, "leaf", sub.id)
    with pytest.raises(UnknownFolder):
        await store.folders.create(env, "x", "fld_missing")
    with pytest.raises(FolderCycle):
        await store.folders.update(env, top.id, {"parent_id": leaf.id})
    moved = await store.folders.update(env, leaf.id, {"parent_id": None, "name": "loose"})
    assert moved is not None and moved.row.parent_id is None and moved.row.name == "loose"
    [a, b] = await _media(store, env, 2)
    await store.media.move(env, sub.id, [a])
    await store.media.move(env, top.id, [b])
    assert (await store.folders.get(env, sub.id)).media_count == 1  # type: ignore[union-attr]
    with pytest.raises(FolderNotEmpty):
        await store.folders.delete(env, top.id, recursive=False)
    assert await store.folders.delete(env, top.id, recursive=True)
    assert await store.folders.get(env, sub.id) is None
    assert {(await store.media.get(env, m)).folder_id for m in (a, b)} == {None}  # type: ignore[union-attr]
    assert not await store.folders.delete(env, top.id, recursive=True)
    page = await store.folders.list(env, 10, 0)
    assert [v.row.name for v in page.items] == ["loose"] and page.total == 1


async def test_moves_are_all_or_nothing(store: Store) -> None:
    env = await _env(store)
    folder = await store.folders.create(env, "f", None)
    [a] = await _media(store, env, 1)
    with pytest.raises(UnknownMedia) as err:
        await store.media.move(env, folder.id, [a, "med_missing"])
    assert err.value.ids == ["med_missing"]
    assert (await store.media.get(env, a)).folder_id is None  # type: ignore[union-attr]
    other = await _env(store, "other")
    with pytest.raises(UnknownFolder):
        await store.media.move(other, folder.id, [])


async def test_tags_unique_per_environment_counts_and_filters(store: Store) -> None:
    env, other = await _env(store), await _env(store, "other")
    news = await store.tags.create(env, "news")
    with pytest.raises(TagExists):
        await store.tags.create(env, "news")
    await store.tags.create(other, "news")
    a, b, c = await _media(store, env, 3)
    await store.media.update(env, a, {"tags": ["news", "sport"]})
    await store.media.update(env, b, {"tags": ["news"], "name": "B"})
    item = await store.media.get(env, a)
    assert item is not None and [t.name for t in item.tags] == ["news", "sport"]
    page = await store.media.list(env, 10, 0, tag="news")
    assert {m.id for m in page.items} == {a, b} and page.total == 2
    assert (await store.media.list(other, 10, 0, tag="news")).total == 0
    counts = {v.row.name: v.media_count for v in (await store.tags.list(env, 10, 0)).items}
    assert counts == {"news": 2, "sport": 1}
    sport = next(v.row for v in (await store.tags.list(env, 10, 0)).items if v.row.name == "sport")
    with pytest.raises(TagExists):
        await store.tags.rename(env, sport.id, "news")
    assert await store.tags.delete(env, news.id)
    item = await store.media.get(env, a)
    assert item is not None and [t.name for t in item.tags] == ["sport"]
    deleted = await store.media.delete(env, a)
    assert deleted is not None and deleted.id == a
    assert (await store.tags.get(env, sport.id)).media_count == 0  # type: ignore[union-attr]
    assert c


async def test_status_transitions_are_conditional(store: Store) -> None:
    env = await _env(store)
    [a] = await _media(store, env, 1)
    assert await store.media.transition(a, "processing", "ready", duration_seconds=1.5)
    assert not await store.media.transition(a, "processing", "error", error="late")
    item = await store.media.get(env, a)
    assert item is not None and item.status == "ready" and item.duration_seconds == 1.5
    importing = Media(
        id="med_import",
        environment_id=env,
        name="i",
        status="uploading",
        source="import",
        filename="i",
        path=media_path(env, "med_import"),
        size_bytes=0,
        video={"codec": "h264", "width": 1, "height": 1, "fps": None},
        created_at=datetime.now(UTC),
        tags=[],
    )
    await store.media.add(importing)
    assert [m.id for m in await store.media.with_status("uploading")] == ["med_import"]
    await store.media.delete_ids(["med_import"])
    assert await store.media.by_id("med_import") is None


async def test_tasks(store: Store) -> None:
    env = await _env(store)
    task = await store.tasks.create(env, "media.import", {"url": "https://example.com/a"})
    assert task.status == "pending" and task.progress == 0
    await store.tasks.update(task.id, status="running", progress=0.5, result={"mediaId": "m"})
    assert [t.id for t in await store.tasks.unfinished()] == [task.id]
    await store.tasks.update(task.id, status="done", progress=1.0)
    found = await store.tasks.get(env, task.id)
    assert found is not None and found.progress == 1.0 and found.result == {"mediaId": "m"}
    assert await store.tasks.get(await _env(store, "other"), task.id) is None
    assert await store.tasks.unfinished() == []
