"""The player page at ``/play/{edgeId}``: hls.js served by relaycast itself.

hls.js comes from the npm registry at set-up time (``scripts/web.sh``), never from a
CDN and never from the repository; without it the page says how to install it and
still plays natively where the browser can (Safari).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from aiohttp import web

HLSJS_ENV = "RELAYCAST_HLSJS"
DEFAULT_HLSJS = Path(".web/node_modules/hls.js/dist/hls.min.js")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>relaycast {title}</title>
<style>
  body {{ margin: 0; background: #111; color: #ddd; font: 14px sans-serif; }}
  video {{ width: 100vw; max-height: 90vh; background: #000; display: block; }}
  #status {{ padding: 8px 12px; }}
</style>
</head>
<body>
<video id="video" controls autoplay muted playsinline></video>
<div id="status">{waiting}</div>
<script src="/play/assets/hls.min.js"></script>
<script>
  const source = "{source}" + window.location.search;
  const video = document.getElementById("video");
  const status = document.getElementById("status");
  window.playerErrors = [];
  video.addEventListener("playing", () => {{ status.textContent = "{playing}"; }});
  video.addEventListener("error", () => {{ window.playerErrors.push("media element error"); }});
  if (window.Hls && Hls.isSupported()) {{
    const hls = new Hls({config});
    hls.on(Hls.Events.ERROR, (_, data) => {{
      if (data.fatal) {{ window.playerErrors.push(data.type + ": " + data.details); }}
      status.textContent = "error: " + data.details;
    }});
    hls.loadSource(source);
    hls.attachMedia(video);
    window.hls = hls;
  }} else if (video.canPlayType("application/vnd.apple.mpegurl")) {{
    video.src = source;
  }} else {{
    status.textContent = "hls.js is not installed on this server: run scripts/web.sh";
  }}
</script>
</body>
</html>
"""


# Live: 1.1x catch-up holds the latency near PART-HOLD-BACK after a stall (hls.js's
# default 1 never speeds up, so the viewer would stay behind for good).
LIVE_CONFIG = "{ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.1 }"


def player_html(title: str, source: str, waiting: str, playing: str, config: str = "") -> str:
    """One page for live and VOD: the same locally served hls.js, the same error
    reporting the browser tests read (``window.playerErrors``)."""
    return PAGE.format(title=title, source=source, waiting=waiting, playing=playing, config=config)


def hlsjs_path() -> Path:
    return Path(os.environ.get(HLSJS_ENV, DEFAULT_HLSJS))


async def player_page(request: web.Request) -> web.Response:
    edge = html.escape(request.match_info["edgeId"])  # the route admits lse_<hex> only
    page = player_html("live", f"/live/{edge}/master.m3u8", "connecting…", "live", LIVE_CONFIG)
    return web.Response(text=page, content_type="text/html")


async def hlsjs(_: web.Request) -> web.StreamResponse:
    path = hlsjs_path()
    if not path.is_file():
        raise web.HTTPNotFound(text="hls.js is not installed: run scripts/web.sh\\n")
    return web.FileResponse(
        path, headers={"Content-Type": "text/javascript", "Cache-Control": "public, max-age=3600"}
    )


def mount_player(app: web.Application) -> None:
    app.router.add_get(r"/play/{edgeId:lse_[0-9a-f]+}", player_page)
    app.router.add_get("/play/assets/hls.min.js", hlsjs)
