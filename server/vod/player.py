"""The VOD player page at ``/play/vod/{mediaId}``: the same locally served hls.js as the
live page (``server.hls.player``), without the low-latency catch-up a file never needs.

A private item's page is opened with the item's ``?token=``, which the page passes on
to the playlist (and the playlists pass on to every segment).
"""

from __future__ import annotations

import html

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>relaycast video</title>
<style>
  body {{ margin: 0; background: #111; color: #ddd; font: 14px sans-serif; }}
  video {{ width: 100vw; max-height: 90vh; background: #000; display: block; }}
  #status {{ padding: 8px 12px; }}
</style>
</head>
<body>
<video id="video" controls autoplay muted playsinline></video>
<div id="status">loading…</div>
<script src="/play/assets/hls.min.js"></script>
<script>
  const source = "/vod/{media}/master.m3u8" + window.location.search;
  const video = document.getElementById("video");
  const status = document.getElementById("status");
  window.playerErrors = [];
  video.addEventListener("playing", () => {{ status.textContent = "playing"; }});
  video.addEventListener("error", () => {{ window.playerErrors.push("media element error"); }});
  if (window.Hls && Hls.isSupported()) {{
    const hls = new Hls();
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


async def vod_player_page(request: web.Request) -> web.Response:
    media = html.escape(request.match_info["mediaId"])  # the route admits med_<hex> only
    return web.Response(text=PAGE.format(media=media), content_type="text/html")


def mount_vod_player(app: web.Application) -> None:
    app.router.add_get(r"/play/vod/{mediaId:med_[0-9a-f]{1,32}}", vod_player_page)
