"""The VOD player page at ``/play/vod/{mediaId}``: the same locally served hls.js as the
live page (``server.hls.player``), without the low-latency catch-up a file never needs.

A private item's page is opened with the item's ``?token=``, which the page passes on
to the playlist (and the playlists pass on to every segment).
"""

from __future__ import annotations

import html

from aiohttp import web

from server.hls.player import player_html


async def vod_player_page(request: web.Request) -> web.Response:
    media = html.escape(request.match_info["mediaId"])  # the route admits med_<hex> only
    page = player_html("video", f"/vod/{media}/master.m3u8", "loading…", "playing")
    return web.Response(text=page, content_type="text/html")


def mount_vod_player(app: web.Application) -> None:
    app.router.add_get(r"/play/vod/{mediaId:med_[0-9a-f]{1,32}}", vod_player_page)
