"""The studio's channels in Debian's Chromium (Playwright), against a real server: two
files uploaded by drag and drop become a channel's queue, reordered by dragging (and
from the keyboard), scheduled, started and stopped; then a playing channel shows what
is on air with its progress, plays in the preview and skips. Every page is
screenshotted and must log no console error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.studio import PHONE, Studio
from tests.browser.test_studio import allow, drop_files, make_video, playing
from tests.interop.conftest import Relaycast, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.serial]


def upload_two(
    studio: Studio, tmp_path: Path, seconds: int, names: tuple[str, str]
) -> dict[str, str]:
    """Two files dropped on the library's drop zone (named for the test, as the module's
    tests share a library); their media ids by name once both are ready."""
    files = [
        make_video(tmp_path / names[0], seconds, "320x240", "300k"),
        make_video(tmp_path / names[1], seconds, "480x270", "400k"),
    ]
    studio.go("#/library", "Media library")
    drop_files(studio, files)
    ids = {}
    for f in files:
        card = studio.page.locator(f"li.media[data-name='{f.name}'][data-status=ready]")
        card.wait_for(timeout=60_000)
        ids[f.name] = str(card.get_attribute("data-media-id"))
    return ids


def create_channel(studio: Studio, name: str) -> str:
    """The create form, then the channel's page; its stream id."""
    page = studio.page
    studio.go("#/channels", "Channels")
    form = page.get_by_role("form", name="New channel")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Output size").select_option("320x180")
    form.get_by_label("Frame rate").fill("25")
    form.get_by_label("Video bitrate (kbit/s)").fill("400")
    form.get_by_role("button", name="Create channel").click()
    page.get_by_role("region", name="Ingest details").wait_for()
    page.locator("#channels-body tr", has_text=name).wait_for()
    studio.shoot("channels")
    page.get_by_role("link", name=f"Open {name} →").click()
    page.get_by_role("heading", name="Queue").wait_for()
    return str(page.url).rsplit("/", 1)[1]


def queued(studio: Studio) -> list[str]:
    return [str(n) for n in studio.page.locator("li.queue-item").evaluate_all(
        "els => els.map(e => e.dataset.name)"
    )]  # fmt: skip


def api_order(relaycast: Relaycast, stream_id: str) -> list[str]:
    doc = relaycast.api.ok("GET", f"/v1/live-streams/{stream_id}/queue")
    return [str(item["name"]) for item in doc["items"]]


def add(studio: Studio, media_id: str, name: str) -> None:
    form = studio.page.get_by_role("form", name="Add from the library")
    form.get_by_label("Library item").select_option(media_id)
    form.get_by_role("button", name="Add to queue").click()
    studio.page.locator(f"li.queue-item[data-name='{name}']").wait_for()


def in_order(studio: Studio, relaycast: Relaycast, stream_id: str, names: list[str]) -> None:
    """The page and the API agree on the order (the page repaints from the API)."""
    wait_for(lambda: queued(studio), lambda got: got == names, timeout=10, what=f"queue {names}")
    assert api_order(relaycast, stream_id) == names


def test_channel_from_two_uploads_reordered_scheduled_started_and_stopped(
    studio: Studio, relaycast: Relaycast, tmp_path: Path
) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    media = upload_two(studio, tmp_path, 3, ("intro.mp4", "feature.mp4"))
    sid = create_channel(studio, "Lobby TV")

    # an empty queue cannot start: the API's reason is shown
    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#notice", has_text="empty queue").wait_for()
    allow(studio, "status of 409")
    assert page.get_by_role("button", name="Skip").is_disabled()

    add(studio, media["intro.mp4"], "intro.mp4")
    add(studio, media["feature.mp4"], "feature.mp4")
    in_order(studio, relaycast, sid, ["intro.mp4", "feature.mp4"])
    assert "2 items, 00:06 in all" in page.locator("#queue-summary").inner_text()

    # drag the second item onto the first: it takes its place
    feature = page.locator("li.queue-item[data-name='feature.mp4']")
    feature.drag_to(page.locator("li.queue-item[data-name='intro.mp4']"))
    in_order(studio, relaycast, sid, ["feature.mp4", "intro.mp4"])
    # and back from the keyboard; the focus stays on the moved item
    page.get_by_role("button", name="Move intro.mp4 up").focus()
    page.keyboard.press("Enter")
    in_order(studio, relaycast, sid, ["intro.mp4", "feature.mp4"])
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Move intro.mp4 down"
    page.keyboard.press("Enter")
    in_order(studio, relaycast, sid, ["feature.mp4", "intro.mp4"])

    # remove one, then queue it again (at the end)
    page.get_by_role("button", name="Remove intro.mp4").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    in_order(studio, relaycast, sid, ["feature.mp4"])
    add(studio, media["intro.mp4"], "intro.mp4")
    in_order(studio, relaycast, sid, ["feature.mp4", "intro.mp4"])

    # the schedule: a refused one names its field, a good one is saved in UTC
    schedule = page.get_by_role("form", name="Schedule")
    schedule.get_by_label("Starts").fill("2031-03-15T22:00")
    schedule.get_by_label("Ends").fill("2031-03-15T21:00")
    schedule.get_by_role("button", name="Save schedule").click()
    refusal = schedule.locator("[data-field=scheduledEnd] .field-error")
    refusal.wait_for()
    assert refusal.inner_text().strip()
    allow(studio, "status of 422")
    schedule.get_by_label("Ends").fill("2031-03-16T01:30")
    schedule.get_by_label("Repeat").select_option("weekly")
    schedule.get_by_label("Loop").uncheck()
    schedule.get_by_role("button", name="Save schedule").click()
    page.locator("#schedule-summary", has_text="every week").wait_for()
    want = page.evaluate(
        "['2031-03-15T22:00', '2031-03-16T01:30']"
        ".map(v => new Date(v).toISOString().replace(/\\.\\d{3}Z$/, 'Z'))"
    )
    got = relaycast.api.stream(sid)
    assert [got["scheduledStart"], got["scheduledEnd"]] == want
    assert got["scheduleRepeat"] == "weekly" and got["loop"] is False
    studio.shoot("channel")
    # left open, the page stays well inside the default 60 requests a minute
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/v1/" in r.url else None)
    page.wait_for_timeout(12_000)  # (a plain sleep would hold Playwright's events back)
    assert 4 <= len(calls) <= 8, calls  # the queue every 3 s, the channel every 6 s

    # stop (from the keyboard: the focus moves on to Start), then start again: the state
    # follows, and the API agrees
    page.get_by_role("button", name="Stop", exact=True).focus()
    page.keyboard.press("Enter")
    page.locator("#state .badge.disabled").wait_for()
    page.locator("#np-idle", has_text="Stopped").wait_for()
    assert relaycast.api.stream(sid)["enabled"] is False
    assert page.evaluate("document.activeElement.textContent") == "Start"
    with page.expect_response(lambda r: r.url.endswith(f"{sid}/start")) as started:
        page.get_by_role("button", name="Start", exact=True).click()
    assert started.value.status == 200
    page.locator("#state .badge.disabled").wait_for(state="detached")
    assert relaycast.api.stream(sid)["enabled"] is True

    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    studio.shoot("phone-channel")
    assert not studio.overflows()
    studio.go("#/channels", "Channels")
    studio.shoot("phone-channels")
    assert not studio.overflows()


def test_a_started_channel_plays_in_the_preview_with_progress_and_skips(
    studio: Studio, relaycast: Relaycast, tmp_path: Path
) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    media = upload_two(studio, tmp_path, 8, ("opener.mp4", "main.mp4"))
    sid = create_channel(studio, "Playing TV")
    add(studio, media["opener.mp4"], "opener.mp4")
    add(studio, media["main.mp4"], "main.mp4")
    feature = page.locator("li.queue-item[data-name='main.mp4']")
    feature.drag_to(page.locator("li.queue-item[data-name='opener.mp4']"))
    in_order(studio, relaycast, sid, ["main.mp4", "opener.mp4"])

    page.get_by_role("button", name="Start", exact=True).click()
    page.locator("#np-name", has_text="main.mp4").wait_for(timeout=20_000)
    page.locator("li.queue-item.on-air[data-name='main.mp4']").wait_for()
    bar = page.locator("#np-progress")
    first = float(bar.evaluate("p => p.value"))
    page.wait_for_timeout(1500)
    assert float(bar.evaluate("p => p.value")) > first
    page.locator("#state .badge.live").wait_for(timeout=30_000)
    playing(studio, "#preview")
    studio.shoot("channel-playing")

    # queued "next": right after the item on air, not at the end
    form = page.get_by_role("form", name="Add from the library")
    form.get_by_label("Where").select_option("next")
    form.get_by_label("Library item").select_option(media["opener.mp4"])
    form.get_by_role("button", name="Add to queue").click()
    in_order(studio, relaycast, sid, ["main.mp4", "opener.mp4", "opener.mp4"])

    page.get_by_role("button", name="Skip").click()
    page.locator("#np-name", has_text="opener.mp4").wait_for(timeout=15_000)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.locator("#np-idle", has_text="Stopped").wait_for(timeout=15_000)
    assert relaycast.api.ok("GET", f"/v1/live-streams/{sid}/queue")["nowPlaying"] is None
