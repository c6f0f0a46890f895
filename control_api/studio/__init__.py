"""The studio at ``/studio``: a web app that does everything through the public ``/v1``
API, served by relaycast itself.

Plain ES modules and one stylesheet, served as they are in the repository: no build step,
so what runs in the browser is what is reviewed. The two libraries it needs (hls.js for
the preview, tus-js-client for resumable uploads) come from the npm registry at set-up
time (``scripts/web.sh``) into ``.web``, never from a CDN and never committed.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.hls.player import hlsjs_path

STATIC = Path(__file__).parent / "static"
# Like hls.js for /play: relative to the directory relaycast runs in (the checkout).
TUSJS = Path(".web/node_modules/tus-js-client/dist/tus.min.js")
# No caching of the app itself: after an upgrade a tab must not mix old and new modules.
NO_CACHE = {"Cache-Control": "no-cache"}
VENDOR_HEADERS = {"Content-Type": "text/javascript", "Cache-Control": "public, max-age=3600"}


async def studio_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers=NO_CACHE)


def _vendor(path: Path) -> web.StreamResponse:
    """A library from ``.web``, or a 404 that says how to install it."""
    if not path.is_file():
        raise web.HTTPNotFound(text=f"{path.name} is not installed: run scripts/web.sh\n")
    return web.FileResponse(path, headers=VENDOR_HEADERS)


async def hlsjs(_: web.Request) -> web.StreamResponse:
    return _vendor(hlsjs_path())


async def tusjs(_: web.Request) -> web.StreamResponse:
    return _vendor(TUSJS)


def mount_studio(app: web.Application) -> None:
    app.router.add_get("/studio", studio_page)
    app.router.add_get("/studio/", studio_page)
    app.router.add_get("/studio/vendor/hls.min.js", hlsjs)
    app.router.add_get("/studio/vendor/tus.min.js", tusjs)
    app.router.add_static("/studio/static", STATIC, append_version=False)
