"""VOD playback of library items over the real HTTP server: HLS VOD and the seekable MP4.

Files are made by the ffmpeg program; what the server serves is read back by ffprobe
and PyAV (both real HLS/MP4 clients).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from control_api.store.models import Media
from server.vod.http import VOD_SERVICE
from tests.api.conftest import Api
from tests.api.tus_helpers import upload, wait_media
from tests.api.vod_helpers import (
    decoded_frames,
    first_video_packet_is_keyframe,
    get,
    make_files,
    playlist_uris,
    ready_item,
)
from tests.conftest import require_program

pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("vod"))


def _durations(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"#EXTINF:([0-9.]+),", text)]


def _ffprobe_frames(url: str) -> dict[str, int]:
    program = require_program("ffprobe")
    out = subprocess.run(
        [program, "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,nb_read_frames", "-of", "json", url],
        check=True, capture_output=True, timeout=120, text=True,
    )  # fmt: skip
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(out.stdout)["streams"]}


@pytest.mark.parametrize(
    ("name", "kinds"),
    [("av", ("video", "audio")), ("video", ("video",)), ("fragmented", ("video", "audio"))],
)
async def test_hls_and_mp4_decode_and_segments_start_with_keyframes(
    api: Api, files: dict[str, Path], name: str, kinds: tuple[str, ...]
) -> None:
    item = await ready_item(api, files[name])
    hls, mp4 = item["playback"]["hlsUrl"], item["playback"]["mp4Url"]
    status, _, body = await get(api, hls)
    assert status == 200 and playlist_uris(body.decode()) == ["media.m3u8"]
    status, _, body = await get(api, hls.replace("master.m3u8", "media.m3u8"))
    text = body.decode()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    assert "#EXT-X-TARGETDURATION:2\n" in text
    assert sum(_durations(text)) == pytest.approx(item["durationSeconds"], abs=0.1)
    assert len(_durations(text)) == 5
    base = hls.rsplit("/", 1)[0]
    _, _, init = await get(api, f"{base}/init0.mp4")
    for uri in playlist_uris(text):
        status, headers, segment = await get(api, f"{base}/{uri}")
        assert status == 200 and headers["Content-Type"] == "video/iso.segment"
        assert first_video_packet_is_keyframe(init, segment)
    for url in (hls, mp4):
        probed = await asyncio.to_thread(_ffprobe_frames, url)
        decoded = await asyncio.to_thread(decoded_frames, url)
        assert probed["video"] == decoded["video"] == 250, (url, probed, decoded)
        if "audio" in kinds:
            assert probed["audio"] >= 460 and decoded["audio"] >= 460, (url, probed, decoded)
        else:
            assert "audio" not in probed and decoded["audio"] == 0


async def test_mp4_ranges_and_416(api: Api, files: dict[str, Path]) -> None:
    item = await ready_item(api, files["av"])
    mp4 = item["playback"]["mp4Url"]
    size = files["av"].stat().st_size
    status, headers, body = await get(api, mp4, Range="bytes=100-199")
    assert status == 206 and headers["Content-Range"] == f"bytes 100-199/{size}"
    assert body == files["av"].read_bytes()[100:200]
    status, headers, body = await get(api, mp4, Range=f"bytes={size - 10}-")
    assert status == 206 and headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"
    status, headers, _ = await get(api, mp4, Range=f"bytes={size}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"


async def _problem(api: Api, url: str, status: int) -> dict[str, Any]:
    got, headers, body = await get(api, url)
    assert got == status, body
    assert headers["Content-Type"].startswith("application/problem+json")
    return dict(json.loads(body))


async def test_unknown_and_not_ready_items(api: Api) -> None:
    base = api.base + "/vod"
    assert (
        "med_00000000" in (await _problem(api, f"{base}/med_00000000/master.m3u8", 404))["detail"]
    )
    row = Media(
        id="med_0123456789abcdef01234567",
        environment_id=(await api.store.environments.ensure("default"))[0].id,
        name="x",
        status="processing",
        source="upload",
        filename="x.mp4",
        path="x/y",
        created_at=datetime.now(UTC),
    )
    await api.store.media.add(row)
    problem = await _problem(api, f"{base}/{row.id}/master.m3u8", 409)
    assert "processing" in problem["detail"]
    await _problem(api, f"{base}/{row.id}/file.mp4", 409)


async def test_codec_hls_cannot_carry_is_415_naming_it(api: Api, files: dict[str, Path]) -> None:
    media_id = (await ready_item(api, files["mpeg2"]))["mediaId"]
    item = (await api.call("GET", f"/v1/media/{media_id}")).json
    assert "mp4Url" not in item["playback"]
    problem = await _problem(api, item["playback"]["hlsUrl"], 415)
    assert "mpeg2video" in problem["detail"]
    await _problem(api, item["playback"]["hlsUrl"].replace("master.m3u8", "seg0.m4s"), 415)


@pytest.mark.parametrize(("name", "container"), [("mkv", "matroska"), ("ts", "mpegts")])
async def test_other_containers_are_remuxed_once_to_faststart_mp4(
    api: Api, files: dict[str, Path], name: str, container: str
) -> None:
    """MPEG-TS carries H.264 as Annex B and AAC as ADTS: the MP4 remux turns them into
    the sample forms HLS fMP4 needs, so the VOD is cut from the MP4."""
    item = await ready_item(api, files[name])
    assert item["container"] == container
    status, headers, body = await get(api, item["playback"]["mp4Url"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert body.index(b"moov") < body.index(b"mdat")  # faststart: seekable before the end
    for url in (item["playback"]["mp4Url"], item["playback"]["hlsUrl"]):
        decoded = await asyncio.to_thread(decoded_frames, url)
        assert decoded["video"] == 100 and decoded["audio"] > 180, (url, decoded)
    status, _, text = await get(api, item["playback"]["hlsUrl"].replace("master", "media"))
    assert status == 200 and sum(_durations(text.decode())) == pytest.approx(4.0, abs=0.1)


async def test_private_items_need_a_token_for_this_item(api: Api, files: dict[str, Path]) -> None:
    item = await ready_item(api, files["av"], policy="private")
    other = await ready_item(api, files["mkv"], policy="private")
    assert item["playbackPolicy"] == "private"
    hls, mp4 = item["playback"]["hlsUrl"], item["playback"]["mp4Url"]
    await _problem(api, hls, 401)
    await _problem(api, mp4, 401)
    reply = await api.call(
        "POST", f"/v1/media/{item['mediaId']}/playback-tokens", body={"expiresInSeconds": 600}
    )
    assert reply.status == 201, reply.text
    token = reply.json["token"]
    status, _, body = await get(api, f"{hls}?token={token}")
    assert status == 200 and playlist_uris(body.decode()) == [f"media.m3u8?token={token}"]
    status, _, _ = await get(api, f"{mp4}?token={token}")
    assert status == 200
    await _problem(api, f"{other['playback']['hlsUrl']}?token={token}", 401)
    unknown = await api.call("POST", "/v1/media/med_404/playback-tokens", body={})
    assert unknown.status == 404
    no_key = await api.call("POST", f"/v1/media/{item['mediaId']}/playback-tokens", key=None)
    assert no_key.status == 401


async def test_the_readme_vod_example_runs_as_written(
    api: Api, files: dict[str, Path], tmp_path: Path
) -> None:
    item = await ready_item(api, files["av"], policy="private")
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- curl-vod -->", 2)[1]
    workdir = tmp_path / "readme"
    await asyncio.to_thread(workdir.mkdir)
    script = f"cd {workdir}\n" + block.split("```bash", 1)[1].split("```", 1)[0]
    env = {"RELAYCAST": api.base, "KEY": api.admin_key, "MEDIA_ID": item["mediaId"]}
    done = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        env={**env, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out = (await asyncio.wait_for(done.communicate(), 60))[0].decode()
    assert done.returncode == 0, out
    assert out.startswith("#EXTM3U") and "media.m3u8?token=" in out, out
    assert out.rstrip().endswith("206 1024"), out
    assert await asyncio.to_thread(os.listdir, workdir) == []  # it cleans up after itself


async def test_a_cached_segment_of_a_private_item_still_needs_its_token(
    api: Api, files: dict[str, Path]
) -> None:
    """The cached-segment path answers from memory, but never before the token check."""
    item = await ready_item(api, files["av"], policy="private")
    reply = await api.call("POST", f"/v1/media/{item['mediaId']}/playback-tokens", body={})
    token = reply.json["token"]
    segment = item["playback"]["hlsUrl"].replace("master.m3u8", "seg1.m4s")
    status, _, first = await get(api, f"{segment}?token={token}")  # cut and cached
    assert status == 200 and first
    replies = await asyncio.gather(
        *(get(api, segment) for _ in range(10)),
        *(get(api, f"{segment}?token=forged") for _ in range(10)),
        *(get(api, f"{segment}?token={token}") for _ in range(10)),
    )
    assert [r[0] for r in replies[:20]] == [401] * 20
    assert all(r[0] == 200 and r[2] == first for r in replies[20:])


async def test_segments_are_read_once_and_cached(api: Api, files: dict[str, Path]) -> None:
    item = await ready_item(api, files["av"])
    service = api.http_app[VOD_SERVICE]
    url = item["playback"]["hlsUrl"].replace("master.m3u8", "seg2.m4s")
    await get(api, item["playback"]["hlsUrl"])
    before = service.reads
    replies = await asyncio.gather(*(get(api, url) for _ in range(20)))
    assert {r[0] for r in replies} == {200} and len({r[2] for r in replies}) == 1
    assert service.reads == before + 1
    await get(api, url)
    assert service.reads == before + 1


async def test_file_deleted_while_served_ends_that_response_whole(
    api: Api, files: dict[str, Path]
) -> None:
    item = await ready_item(api, files["av"])
    expected = files["av"].read_bytes()
    async with api.http.get(item["playback"]["mp4Url"]) as resp:
        assert resp.status == 200
        first = await resp.content.read(1000)
        assert (await api.call("DELETE", f"/v1/media/{item['mediaId']}")).status == 204
        rest = await resp.read()
    assert first + rest == expected
    status, _, _ = await get(api, item["playback"]["mp4Url"])
    assert status == 404


async def test_a_file_gone_from_disk_is_a_problem_not_a_crash(
    api: Api, files: dict[str, Path]
) -> None:
    item = await ready_item(api, files["video"])
    hls = item["playback"]["hlsUrl"]
    assert (await get(api, hls))[0] == 200
    library_file = next((Path(api.settings.server.data_dir) / "media").rglob(item["mediaId"]))
    library_file.unlink()
    problem = await _problem(api, hls.replace("master.m3u8", "seg1.m4s"), 404)
    assert "cannot be read" in problem["detail"]


async def test_a_damaged_upload_is_an_error_item_with_a_reason(
    api: Api, files: dict[str, Path]
) -> None:
    whole = await asyncio.to_thread(files["av"].read_bytes)
    media_id = await upload(api, whole[: len(whole) // 2], "cut.mp4")  # the moov is at the end
    item = await wait_media(api, media_id)
    assert item["status"] == "error" and item["error"], item
    assert "playback" not in item
    await _problem(api, f"{api.base}/vod/{media_id}/master.m3u8", 409)
