"""Organising the library: media patch/delete, folders and moves, tags and filters, scoping."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.tus_helpers import upload, wait_media


async def _items(api: Api, count: int) -> list[str]:
    """Small (non-media) uploads: enough to organise, quick to probe."""
    ids = [await upload(api, f"file {n}".encode(), f"f{n}.bin") for n in range(count)]
    for media_id in ids:
        await wait_media(api, media_id)
    return ids


async def _ids(api: Api, query: str = "", key: str = "admin") -> list[str]:
    reply = await api.call("GET", f"/v1/media{query}", key=key)
    assert reply.status == 200, reply.text
    return [m["mediaId"] for m in reply.json["media"]]


async def _folder(api: Api, name: str, parent: str | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if parent:
        body["parentId"] = parent
    reply = await api.call("POST", "/v1/folders", body=body)
    assert reply.status == 201, reply.text
    return str(reply.json["folderId"])


async def test_media_list_is_paged_newest_first(api: Api) -> None:
    ids = await _items(api, 5)
    page = await api.call("GET", "/v1/media?limit=2&offset=1")
    assert page.json["total"] == 5
    assert [m["mediaId"] for m in page.json["media"]] == list(reversed(ids))[1:3]
    assert (await api.call("GET", "/v1/media?limit=101")).status == 422
    assert (await api.call("GET", "/v1/media/med_missing")).status == 404


async def test_patch_media_name_folder_and_tags(api: Api) -> None:
    [media_id] = await _items(api, 1)
    folder = await _folder(api, "shows")
    reply = await api.call(
        "PATCH",
        f"/v1/media/{media_id}",
        body={"name": "Episode 1", "folderId": folder, "tags": ["news", "daily", "news"]},
    )
    assert reply.status == 200, reply.text
    assert reply.json["name"] == "Episode 1" and reply.json["folderId"] == folder
    assert reply.json["tags"] == ["daily", "news"]
    to_root = await api.call("PATCH", f"/v1/media/{media_id}", body={"folderId": None})
    assert "folderId" not in to_root.json and to_root.json["tags"] == ["daily", "news"]
    cleared = await api.call("PATCH", f"/v1/media/{media_id}", body={"tags": []})
    assert cleared.json["tags"] == []
    for body, status in [
        ({"folderId": "fld_missing"}, 404),
        ({"name": None}, 422),
        ({"name": ""}, 422),
        ({"tags": [" padded"]}, 422),
        ({"tags": "news"}, 422),
        ({"status": "ready"}, 422),
    ]:
        bad = await api.call("PATCH", f"/v1/media/{media_id}", body=body)
        assert bad.status == status, (body, bad.text)
    assert (await api.call("PATCH", "/v1/media/med_missing", body={"name": "x"})).status == 404


async def test_folders_crud_tree_and_moves(api: Api) -> None:
    a, b, c = await _items(api, 3)
    shows = await _folder(api, "shows")
    season = await _folder(api, "season 1", shows)
    listed = await api.call("GET", "/v1/folders")
    assert [f["name"] for f in listed.json["folders"]] == ["season 1", "shows"]
    assert listed.json["total"] == 2
    children = await api.call("GET", f"/v1/folders?parentId={shows}")
    assert [f["folderId"] for f in children.json["folders"]] == [season]

    moved = await api.call("POST", f"/v1/folders/{season}/media", body={"mediaIds": [a, b]})
    assert moved.status == 200 and moved.json["mediaCount"] == 2
    assert sorted(await _ids(api, f"?folderId={season}")) == sorted([a, b])
    assert await _ids(api, f"?folderId={shows}") == []
    partial = await api.call("POST", f"/v1/folders/{shows}/media", body={"mediaIds": [c, "med_x"]})
    assert partial.status == 404 and "med_x" in partial.json["detail"]
    assert await _ids(api, f"?folderId={shows}") == []  # all or nothing
    assert (await api.call("POST", "/v1/folders/fld_x/media", body={"mediaIds": [c]})).status == 404
    assert (
        await api.call("POST", f"/v1/folders/{shows}/media", body={"mediaIds": []})
    ).status == 422

    renamed = await api.call("PATCH", f"/v1/folders/{season}", body={"name": "S1"})
    assert renamed.json["name"] == "S1" and renamed.json["parentId"] == shows
    cycle = await api.call("PATCH", f"/v1/folders/{shows}", body={"parentId": season})
    assert cycle.status == 409
    itself = await api.call("PATCH", f"/v1/folders/{shows}", body={"parentId": shows})
    assert itself.status == 409
    root = await api.call("PATCH", f"/v1/folders/{season}", body={"parentId": None})
    assert root.status == 200 and "parentId" not in root.json
    back = await api.call("PATCH", f"/v1/folders/{season}", body={"parentId": shows})
    assert back.json["parentId"] == shows
    assert (await api.call("GET", f"/v1/folders/{season}")).json["mediaCount"] == 2
    assert (
        await api.call("POST", "/v1/folders", body={"name": "x", "parentId": "fld_no"})
    ).status == 404


async def test_deleting_folders(api: Api) -> None:
    a, b = await _items(api, 2)
    empty = await _folder(api, "empty")
    assert (await api.call("DELETE", f"/v1/folders/{empty}")).status == 204
    assert (await api.call("GET", f"/v1/folders/{empty}")).status == 404

    top = await _folder(api, "top")
    sub = await _folder(api, "sub", top)
    await api.call("POST", f"/v1/folders/{top}/media", body={"mediaIds": [a]})
    await api.call("POST", f"/v1/folders/{sub}/media", body={"mediaIds": [b]})
    refused = await api.call("DELETE", f"/v1/folders/{top}")
    assert refused.status == 409 and refused.json["title"] == "Conflict"
    only_subfolder = await _folder(api, "parent")
    await _folder(api, "child", only_subfolder)
    assert (await api.call("DELETE", f"/v1/folders/{only_subfolder}")).status == 409

    assert (await api.call("DELETE", f"/v1/folders/{top}?recursive=true")).status == 204
    assert (await api.call("GET", f"/v1/folders/{sub}")).status == 404
    for media_id in (a, b):
        item = (await api.call("GET", f"/v1/media/{media_id}")).json
        assert "folderId" not in item  # moved to the root, never deleted
    assert (await api.call("DELETE", "/v1/folders/fld_missing")).status == 404


async def test_tags_crud_uniqueness_and_filter(api: Api) -> None:
    a, b, c = await _items(api, 3)
    created = await api.call("POST", "/v1/tags", body={"name": "news"})
    assert created.status == 201 and created.json["mediaCount"] == 0
    tag_id = created.json["tagId"]
    assert tag_id.startswith("tag_")
    assert (await api.call("POST", "/v1/tags", body={"name": "news"})).status == 409
    await api.call("PATCH", f"/v1/media/{a}", body={"tags": ["news", "sport"]})
    await api.call("PATCH", f"/v1/media/{b}", body={"tags": ["news"]})

    assert sorted(await _ids(api, "?tag=news")) == sorted([a, b])
    assert await _ids(api, "?tag=sport") == [a]
    assert await _ids(api, "?tag=unknown") == []
    listed = await api.call("GET", "/v1/tags")
    assert [(t["name"], t["mediaCount"]) for t in listed.json["tags"]] == [
        ("news", 2),
        ("sport", 1),
    ]
    sport = listed.json["tags"][1]["tagId"]
    assert (await api.call("PATCH", f"/v1/tags/{sport}", body={"name": "news"})).status == 409
    renamed = await api.call("PATCH", f"/v1/tags/{tag_id}", body={"name": "headlines"})
    assert renamed.json == {"tagId": tag_id, "name": "headlines", "mediaCount": 2}
    assert (await api.call("GET", f"/v1/media/{b}")).json["tags"] == ["headlines"]
    assert await _ids(api, "?tag=news") == []

    folder = await _folder(api, "f")
    await api.call("POST", f"/v1/folders/{folder}/media", body={"mediaIds": [a, c]})
    assert await _ids(api, f"?folderId={folder}&tag=headlines") == [a]

    assert (await api.call("DELETE", f"/v1/tags/{tag_id}")).status == 204
    assert (await api.call("GET", f"/v1/media/{a}")).json["tags"] == ["sport"]
    assert (await api.call("GET", f"/v1/tags/{tag_id}")).status == 404
    assert (await api.call("DELETE", f"/v1/tags/{tag_id}")).status == 404
    assert (await api.call("POST", "/v1/tags", body={"name": ""})).status == 422


async def test_tags_and_folders_are_per_environment(api: Api) -> None:
    [mine] = await _items(api, 1)
    other = await api.new_key(env="staging")
    folder = await _folder(api, "private")
    tag = (await api.call("POST", "/v1/tags", body={"name": "news"})).json["tagId"]
    # the same tag name is free in another environment
    theirs = await api.call("POST", "/v1/tags", key=other, body={"name": "news"})
    assert theirs.status == 201
    for method, path, body in [
        ("GET", f"/v1/folders/{folder}", None),
        ("PATCH", f"/v1/folders/{folder}", {"name": "x"}),
        ("DELETE", f"/v1/folders/{folder}", None),
        ("GET", f"/v1/tags/{tag}", None),
        ("PATCH", f"/v1/tags/{tag}", {"name": "x"}),
        ("DELETE", f"/v1/tags/{tag}", None),
        ("PATCH", f"/v1/media/{mine}", {"name": "x"}),
        ("DELETE", f"/v1/media/{mine}", None),
    ]:
        reply = await api.call(method, path, key=other, body=body)
        assert reply.status == 404, (method, path, reply.text)
    own_folder = await api.call("POST", "/v1/folders", key=other, body={"name": "theirs"})
    steal = await api.call(
        "POST",
        f"/v1/folders/{own_folder.json['folderId']}/media",
        key=other,
        body={"mediaIds": [mine]},
    )
    assert steal.status == 404
    assert (await api.call("GET", "/v1/folders", key=other)).json["total"] == 1
    assert [t["name"] for t in (await api.call("GET", "/v1/tags", key=other)).json["tags"]] == [
        "news"
    ]
    await api.call("PATCH", f"/v1/media/{mine}", body={"tags": ["news"]})
    assert await _ids(api, "?tag=news", key=other) == []


async def test_openapi_documents_the_library(api: Api) -> None:
    paths = (await api.call("GET", "/v1/openapi.json", key=None)).json["paths"]
    for path, method in [
        ("/v1/media", "get"),
        ("/v1/media/{mediaId}", "patch"),
        ("/v1/media/{mediaId}", "delete"),
        ("/v1/media/import", "post"),
        ("/v1/folders", "post"),
        ("/v1/folders/{folderId}", "delete"),
        ("/v1/folders/{folderId}/media", "post"),
        ("/v1/tags/{tagId}", "patch"),
        ("/v1/tasks/{taskId}", "get"),
    ]:
        assert method in paths[path], (path, method)
    patch = paths["/v1/media/{mediaId}"]["patch"]
    assert "restricted" in patch["description"]
    assert "422" in patch["responses"] and "404" in patch["responses"]
