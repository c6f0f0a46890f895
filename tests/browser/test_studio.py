"""The studio end to end in Debian's Chromium (Playwright), against a real server:
sign in, run a stream with a destination and watch its preview play, upload to the
library by drag and drop (one upload interrupted, the page reloaded, then resumed), and
manage API keys and webhooks. Every page is screenshotted and must log no console error.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.studio import PHONE, Studio
from tests.conftest import require_program
from tests.interop.conftest import Peers, Relaycast, ffmpeg_publish, wait_for
from tests.interop.test_multistream import free_port, start_nginx
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.interop, pytest.mark.serial]

FILE_TIME = 1_700_000_000_000  # a fixed lastModified: tus-js-client's resume fingerprint uses it


def status_of(base: str, path: str, secret: str) -> int:
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def drop_files(studio: Studio, files: list[Path]) -> None:
    """A real drop event on the drop zone, carrying File objects (what a person's drag does)."""
    payload = [(p.name, base64.b64encode(p.read_bytes()).decode()) for p in files]
    transfer = studio.page.evaluate_handle(
        """([files, stamp]) => {
          const dt = new DataTransfer();
          for (const [name, b64] of files) {
            const bin = atob(b64);
            const bytes = new Uint8Array(bin.length);
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
            dt.items.add(new File([bytes], name, { type: "video/mp4", lastModified: stamp }));
          }
          return dt;
        }""",
        [payload, FILE_TIME],
    )
    studio.page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


def make_video(path: Path, seconds: int, size: str, bitrate: str) -> Path:
    ffmpeg = require_program("ffmpeg")
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", bitrate,
         "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


@contextlib.contextmanager
def file_server(directory: Path) -> Iterator[str]:
    """A plain HTTP server for ``directory`` on 127.0.0.1 (a URL import's source)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def playing(studio: Studio, selector: str) -> None:
    """The video's currentTime advances: frames are really being played."""
    video = studio.page.locator(selector)
    wait_for(
        lambda: video.evaluate("v => v.currentTime"),
        lambda t: t > 0.5,
        timeout=30,
        what=f"{selector} to start playing",
        every=0.25,
    )
    before = video.evaluate("v => v.currentTime")
    time.sleep(1.5)
    assert video.evaluate("v => v.currentTime") > before + 0.5


def allow(studio: Studio, *fragments: str) -> None:
    """Drop console errors the test provoked on purpose (a refused request logs one)."""
    studio.errors[:] = [e for e in studio.errors if not any(f in e for f in fragments)]


# ---------------------------------------------------------------- sign in


def test_sign_in_keeps_the_key_in_the_tab_only(studio: Studio, relaycast: Relaycast) -> None:
    page = studio.page
    nav = page.get_by_role("navigation", name="Sections")
    page.get_by_role("button", name="Sign in").wait_for()
    assert not nav.is_visible()  # nothing to navigate to before signing in
    studio.shoot("signin")
    page.get_by_label("API key").fill("rk_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("form .form-error")
    error.wait_for()
    assert error.inner_text().strip()  # the problem's detail, shown on the form
    allow(studio, "status of 401")

    studio.sign_in(relaycast.api.key)
    assert nav.is_visible()
    assert page.evaluate("sessionStorage.getItem('relaycast.studio.secret')") == relaycast.api.key
    assert relaycast.api.key not in page.evaluate("JSON.stringify(localStorage)")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    assert not nav.is_visible()

    page.get_by_label("API key").fill(relaycast.api.key)
    page.get_by_label("Exchange it for a one-hour token").check()
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Live streams").wait_for()
    token = page.evaluate("sessionStorage.getItem('relaycast.studio.secret')")
    assert token and token != relaycast.api.key
    assert status_of(relaycast.server.base, "/v1/live-streams", token) == 200


def test_keyboard_only(studio: Studio, relaycast: Relaycast) -> None:
    """Sign in and reach a section with the keyboard alone (real labels and buttons)."""
    page = studio.page
    page.get_by_role("button", name="Sign in").wait_for()
    page.keyboard.type(relaycast.api.key)  # the key field has the focus on arrival
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Live streams").wait_for()
    page.get_by_role("link", name="relaycast studio").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Library"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Media library").wait_for()
    # The drop zone's keyboard way in opens the file input (its dialog is held back here).
    page.evaluate(
        """document.getElementById("file-input").addEventListener("click", (e) => {
             window.chooserOpened = e.target.multiple; e.preventDefault(); })"""
    )
    page.get_by_text("choose files…").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("window.chooserOpened") is True


# ---------------------------------------------------------------- streams


def create_stream(studio: Studio, name: str, window: int = 0, quality: str = "") -> str:
    """Create a stream from the form; the stream key read from the shown-once card."""
    page = studio.page
    form = page.get_by_role("form", name="New stream")
    form.get_by_label("Name", exact=True).fill(name)
    if quality:
        form.get_by_label("Quality").select_option(quality)
    form.get_by_label("Reconnect window (seconds)").fill(str(window))
    form.get_by_role("button", name="Create stream").click()
    card = page.get_by_role("region", name="Ingest details")
    card.wait_for()
    key: str = card.locator(".secret", has_text="Stream key").locator("code").inner_text()
    assert key.strip()
    return key.strip()


def test_stream_goes_live_with_preview_health_and_destination(
    studio: Studio, relaycast: Relaycast, peers: Peers, tmp_path: Path
) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    # a refused field: the problem's detail appears next to it
    form = page.get_by_role("form", name="New stream")
    form.get_by_label("Name", exact=True).fill("refused")
    form.get_by_label("SRT passphrase (optional)").fill("short")
    form.get_by_role("button", name="Create stream").click()
    refusal = form.locator("[data-field=srtPassphrase] .field-error")
    refusal.wait_for()
    assert refusal.inner_text().strip()
    allow(studio, "status of 422")
    form.get_by_label("SRT passphrase (optional)").fill("")

    # standard over a 640x360 source: one rung, 360p (never taller than the source)
    key = create_stream(studio, "studio live", quality="standard")
    row = page.locator("#streams-body tr", has_text="studio live")
    row.wait_for()
    studio.shoot("streams")
    # the list follows the state without a reload: a mark left in the page survives
    page.evaluate("window.sameDocument = true")
    encoder = ffmpeg_publish(relaycast.publish_url(key), 45, size="640x360", fps=30)
    peers.start("encoder", encoder, limit=90)
    row.locator(".badge.live").wait_for(timeout=30_000)
    assert page.evaluate("window.sameDocument") is True
    studio.shoot("streams-live")

    page.get_by_role("link", name="Open studio live →").click()
    page.get_by_role("heading", name="Preview").wait_for()
    port = free_port()
    start_nginx(peers, tmp_path / "nginx", [port], ["app"])
    dest = page.get_by_role("form", name="New destination")
    dest.get_by_label("Name").fill("nginx")
    dest.get_by_label("URL").fill(f"rtmp://127.0.0.1:{port}/app")
    dest.get_by_label("Stream key").fill("studio")
    dest.get_by_role("button", name="Add destination").click()
    page.locator(".dest", has_text="nginx").wait_for()

    page.locator("#state .badge.live").wait_for(timeout=30_000)
    playing(studio, "#preview")
    page.locator("#health", has_text="640\u00d7360").wait_for()
    rung = page.get_by_role("table", name="Renditions").locator("tr[data-rendition='360p']")
    rung.wait_for(timeout=20_000)
    assert "640\u00d7360" in rung.inner_text()
    # the preview is an HLS viewer: the Viewers card counts it (polled every 10 s)
    page.locator("#viewers dd", has_text="HLS 1").wait_for(timeout=25_000)
    ingest = page.get_by_role("region", name="Ingest")
    assert "live/" in ingest.locator("dd", has_text="rtmp://").last.inner_text()
    assert "m=request" in ingest.locator("dd", has_text="m=request").inner_text()
    page.locator(".dest", has_text="nginx").locator(".badge.active").wait_for(timeout=30_000)
    # a destination nobody listens at: its status says why, and it can be switched off;
    # it asks for a rendition (a name no ladder has is refused next to the field)
    dest.get_by_label("Name").fill("nowhere")
    dest.get_by_label("URL").fill(f"rtmp://127.0.0.1:{free_port()}/app")
    dest.get_by_label("Stream key").fill("lost")
    dest.get_by_label("Rendition (optional)").fill("4k")
    dest.get_by_role("button", name="Add destination").click()
    refused = dest.locator("[data-field=rendition] .field-error")
    refused.wait_for()
    assert "unknown rendition" in refused.inner_text()
    allow(studio, "status of 422")
    dest.get_by_label("Rendition (optional)").fill("360p")
    dest.get_by_role("button", name="Add destination").click()
    nowhere = page.locator(".dest", has_text="nowhere")
    nowhere.get_by_text("pushes 360p").wait_for()
    nowhere.locator(".last-error").wait_for(timeout=30_000)
    assert "Last error:" in nowhere.locator(".last-error").inner_text()
    nowhere.get_by_role("button", name="Disable").click()
    nowhere.locator(".badge.disabled").wait_for()
    page.locator("#sessions td", has_text="rtmp").first.wait_for()
    time.sleep(2)  # a few bitrate samples for the sparkline
    studio.shoot("stream-live")

    page.get_by_role("button", name="Stop", exact=True).click()
    page.locator("#state .badge.disabled").wait_for()
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_role("button", name="Stop", exact=True).wait_for()


def test_rotate_and_delete_a_stream(studio: Studio, relaycast: Relaycast) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    first = create_stream(studio, "to rotate")
    page.get_by_role("link", name="Open to rotate →").click()
    page.get_by_role("heading", name="Preview").wait_for()
    # left open, the page stays inside the default budget of 60 requests a minute
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/v1/" in r.url else None)
    page.wait_for_timeout(12_000)  # (a plain sleep would hold Playwright's events back)
    assert 3 <= len(calls) <= 12, calls  # it does poll, and within 12 per 12 s
    page.get_by_role("button", name="Rotate key").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate key").click()
    card = page.get_by_role("region", name="Ingest details")
    card.wait_for()
    second = card.locator(".secret", has_text="Stream key").locator("code").inner_text().strip()
    assert second and second != first
    studio.shoot("stream-rotated")
    stream_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.get_by_role("heading", name="Live streams").wait_for()
    assert page.locator("#streams-body tr", has_text="to rotate").count() == 0
    assert relaycast.api.call("GET", f"/v1/live-streams/{stream_id}")[0] == 404


# ---------------------------------------------------------------- library


def test_library_uploads_by_drag_and_drop_one_resumed_after_a_reload(
    studio: Studio, relaycast: Relaycast, tmp_path: Path
) -> None:
    page = studio.page
    small = make_video(tmp_path / "small.mp4", 3, "320x240", "400k")
    big = make_video(tmp_path / "big.mp4", 6, "640x360", "5M")
    assert big.stat().st_size > 3 * 1024 * 1024  # several 1 MiB chunks
    studio.sign_in(relaycast.api.key)
    studio.go("#/library", "Media library")

    # The first chunk of the big file goes through, then the network fails for good.
    patches: list[str] = []

    def flaky(route: Any) -> None:
        if route.request.method == "PATCH":
            patches.append(route.request.url)
            if len(patches) > 1:
                route.abort()
                return
        route.continue_()

    page.route("**/v1/uploads/**", flaky)
    drop_files(studio, [big])
    page.locator("li.upload[data-state=error]").wait_for(timeout=30_000)
    studio.shoot("library-interrupted")
    allow(studio, "net::ERR_FAILED")
    page.unroute("**/v1/uploads/**")
    upload_url = patches[0]

    page.reload()
    page.get_by_role("heading", name="Media library").wait_for()
    offsets: list[tuple[str, int]] = []
    page.on(
        "request",
        lambda r: (
            offsets.append((r.url, int(r.headers.get("upload-offset", "-1"))))
            if r.method == "PATCH"
            else None
        ),
    )
    drop_files(studio, [small, big])
    ready = page.locator("li.media[data-status=ready]")
    wait_for(ready.count, lambda n: n == 2, timeout=90, what="two ready media items", every=0.5)
    assert page.locator("li.upload[data-name='big.mp4']").get_attribute("data-resumed") == "true"
    resumed = [offset for url, offset in offsets if url == upload_url]
    assert resumed and resumed[0] >= 1024 * 1024, offsets  # continued, not restarted
    items = relaycast.api.ok("GET", "/v1/media?limit=100")["media"]
    sizes = {m["name"]: m["sizeBytes"] for m in items}
    assert sizes["big.mp4"] == big.stat().st_size
    assert sizes["small.mp4"] == small.stat().st_size

    # a folder, a tag, and the filters over them
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("textbox", name="New folder").fill("Shows")
    side.get_by_role("button", name="Create folder").click()
    side.get_by_role("button", name="Shows").wait_for()
    card = page.locator("li.media[data-name='small.mp4']")
    card.get_by_label("Folder of small.mp4").select_option(label="Shows")
    card.get_by_label("Tags of small.mp4").fill("promo, short")
    card.get_by_role("button", name="Save").click()
    page.locator("li.media[data-name='small.mp4'] .tag", has_text="promo").wait_for()
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_label("Filter by tag").select_option("promo")
    wait_for(ready.count, lambda n: n == 1, timeout=10, what="the tag filter")
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_label("Filter by tag").select_option("")
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("button", name="Shows").click()
    wait_for(ready.count, lambda n: n == 1, timeout=10, what="the folder filter")
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_label("Folder name").fill("Shows 2026")
    side.get_by_role("button", name="Rename / move").click()
    page.get_by_role("button", name="Shows 2026").wait_for()
    # a folder made while one is open goes inside it; then moved out to the root
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("textbox", name="New folder").fill("Archive")
    side.get_by_role("button", name="Create folder").click()
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("button", name="Shows 2026 / Archive").click()
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("button", name="Shows 2026 / Archive", pressed=True).wait_for()
    side.get_by_label("Inside").select_option(label="Library root")
    side.get_by_role("button", name="Rename / move").click()
    page.get_by_role("button", name="Archive", exact=True).wait_for()
    folders = relaycast.api.ok("GET", "/v1/folders")["folders"]
    assert {f["name"]: f.get("parentId") for f in folders}["Archive"] is None
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("button", name="Shows 2026").click()

    # preview of a private ready item: a playback token, then frames
    card = page.locator("li.media[data-name='small.mp4']")
    card.get_by_role("button", name="Preview").click()
    playing(studio, "li.media[data-name='small.mp4'] video")
    studio.shoot("library")

    # import from a URL, with the task's progress
    side = page.get_by_role("complementary", name="Folders and tags")
    side.get_by_role("button", name="All media").click()
    with file_server(tmp_path) as origin:
        form = page.get_by_role("form", name="Import from URL")
        form.get_by_label("URL").fill(f"{origin}/small.mp4")
        form.get_by_label("Name").fill("imported clip")
        form.get_by_role("button", name="Import").click()
        page.locator("#import-progress", has_text="imported").wait_for(timeout=60_000)
    page.locator("li.media[data-name='imported clip'][data-status=ready]").wait_for()
    assert page.get_by_label("Import progress").evaluate("p => p.value") == 1


# ---------------------------------------------------------------- keys and webhooks


def test_api_key_created_shown_once_and_revoked(studio: Studio, relaycast: Relaycast) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    studio.go("#/keys", "API keys")
    form = page.get_by_role("form", name="New API key")
    form.get_by_label("Name").fill("studio-made")
    form.get_by_role("button", name="Create key").click()
    secret = page.get_by_role("region", name="New key secret").locator("code").inner_text().strip()
    assert secret.startswith("rk_")
    base = relaycast.server.base
    assert status_of(base, "/v1/api-keys", secret) == 200
    studio.shoot("keys")
    row = page.locator("tbody tr", has_text="studio-made")
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    wait_for(row.count, lambda n: n == 0, timeout=10, what="the revoked key to leave the list")
    assert status_of(base, "/v1/api-keys", secret) == 401
    assert status_of(base, "/v1/api-keys", relaycast.api.key) == 200


def test_webhook_delivery_log_and_retry(studio: Studio, relaycast: Relaycast, peers: Peers) -> None:
    page = studio.page
    studio.sign_in(relaycast.api.key)
    studio.go("#/webhooks", "Webhooks")
    form = page.get_by_role("form", name="New webhook")
    form.get_by_label("URL").fill("ftp://127.0.0.1/hooks")
    form.get_by_role("button", name="Add webhook").click()
    refusal = form.locator("[data-field=url] .field-error")
    refusal.wait_for()
    assert refusal.inner_text().strip()
    allow(studio, "status of 422")
    with Receiver() as receiver:
        form.get_by_label("URL").fill(receiver.url)
        form.get_by_role("button", name="Add webhook").click()
        secret = page.get_by_role("region", name="Signing secret").locator("code").inner_text()
        assert len(secret.strip()) >= 16
        stream = relaycast.api.create_stream("hooked")
        peers.start("encoder", ffmpeg_publish(relaycast.publish_url(stream), 3), limit=40)
        wait_for(lambda: len(receiver.requests), bool, timeout=20, what="a delivery")
        hook = page.locator("section[data-webhook-id]", has_text=receiver.url)
        hook.get_by_role("button", name="Deliveries").click()
        row = hook.locator("tbody tr", has_text="stream.connecting")
        row.locator(".badge.delivered").wait_for()
        before = len(receiver.requests)
        row.get_by_role("button", name="Retry").click()
        wait_for(lambda: len(receiver.requests), lambda n: n > before, timeout=10, what="the retry")
        studio.shoot("webhooks")


# ---------------------------------------------------------------- every page, phone-sized


@pytest.mark.parametrize(
    ("route", "heading"),
    [
        ("#/streams", "Live streams"),
        ("#/library", "Media library"),
        ("#/webhooks", "Webhooks"),
        ("#/keys", "API keys"),
    ],
)
def test_every_page_fits_a_phone(
    browser: Any, relaycast: Relaycast, screenshots: Path, route: str, heading: str
) -> None:
    studio = Studio.open(browser, relaycast.server.base, screenshots, PHONE)
    try:
        studio.sign_in(relaycast.api.key)
        studio.go(route, heading)
        studio.page.wait_for_timeout(500)
        studio.shoot(f"phone-{route[2:]}")
        assert not studio.overflows()
        if route == "#/streams":
            studio.page.locator("#streams-body a").first.click()
            studio.page.get_by_role("heading", name="Preview").wait_for()
            studio.shoot("phone-stream")
            assert not studio.overflows()
    finally:
        studio.close()
    assert studio.errors == []
