"""/studio is served by relaycast itself: every module it imports, no CDN, and only the
public API (the browser tests in tests/browser drive it for real)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from control_api import studio
from control_api.studio import STATIC
from tests.api.conftest import Api

IMPORT = re.compile(r'from "\./([\w-]+\.js)"')
PATH_LITERAL = re.compile(r'[`"](/[a-z][^`"$]*)')
URL = re.compile(r"https?://([\w.-]+)")
# the SVG namespace, and the placeholders that show a person what to type
NOT_FETCHED = ("www.w3.org", "example.com", "app.example")


async def test_page_and_every_module_it_imports_are_served(api: Api) -> None:
    page = await api.call("GET", "/studio", key=None)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/studio/static/app.js">' in page.text
    pending, seen = ["app.js"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = await api.call("GET", f"/studio/static/{name}", key=None)
        assert reply.status == 200, name
        assert "javascript" in reply.headers["Content-Type"]
        pending += IMPORT.findall(reply.text)
    assert seen == {p.name for p in STATIC.glob("*.js")}  # nothing unused, nothing missing
    css = await api.call("GET", "/studio/static/studio.css", key=None)
    assert css.status == 200


def test_no_cdn_and_only_public_paths() -> None:
    """Everything loads from this server, and the only server paths the studio uses are
    the public API and its own files (no private endpoint)."""
    for path in STATIC.iterdir():
        text = path.read_text()
        for host in URL.findall(text):
            assert host in NOT_FETCHED, (path.name, host)
        for literal in PATH_LITERAL.findall(text):
            assert literal.startswith(("/v1/", "/studio/", "/play/")), (path.name, literal)


@pytest.mark.parametrize("asset", ["hls.min.js", "tus.min.js"])
async def test_vendor_libraries_come_from_web_sh(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asset: str
) -> None:
    def use(path: Path) -> None:
        if asset == "hls.min.js":
            monkeypatch.setenv("RELAYCAST_HLSJS", str(path))
        else:
            monkeypatch.setattr(studio, "TUSJS", path)

    use(tmp_path / "absent.js")
    missing = await api.call("GET", f"/studio/vendor/{asset}", key=None)
    assert missing.status == 404 and "scripts/web.sh" in missing.text
    library = tmp_path / asset
    library.write_text("window.lib = 1;")
    use(library)
    present = await api.call("GET", f"/studio/vendor/{asset}", key=None)
    assert present.status == 200 and present.text == "window.lib = 1;"
    assert present.headers["Content-Type"].startswith("text/javascript")
