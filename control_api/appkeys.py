"""Typed application keys: what the app factory puts on the app for handlers to find.

Every key the app carries is named here, so one file says what an app holds.
``HLS_SERVICE`` belongs to the media plane (``server`` never imports ``control_api``)
and is re-exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from control_api.cors import OriginCache
from control_api.last_used import LastUsed
from control_api.media_library.library import MediaLibrary
from control_api.nodes import ThisNode
from control_api.ratelimit import RateLimiter
from control_api.settings import Settings
from control_api.store import Store
from control_api.urls import Endpoints
from control_api.webhooks.dispatcher import Dispatcher
from server.hls.http import HLS_SERVICE as HLS_SERVICE
from server.ingest.manager import IngestManager
from server.playback import PlaybackService
from server.playout.service import PlayoutService
from server.push.manager import PushManager
from server.record.service import RecordService
from server.transcode.service import TranscodeService

if TYPE_CHECKING:  # for the annotation only: control_api.metrics imports METRICS from here
    from control_api.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
LIMITER = web.AppKey("limiter", RateLimiter)
SIGNING_KEY = web.AppKey("signing_key", bytes)
ORIGINS = web.AppKey("origins", OriginCache)
INGEST = web.AppKey("ingest", IngestManager)
LIBRARY = web.AppKey("library", MediaLibrary)
WEBHOOKS = web.AppKey("webhooks", Dispatcher)
PUSH = web.AppKey("push", PushManager)
TRANSCODE = web.AppKey("transcode", TranscodeService)  # set by ``relaycast serve``
RECORDER = web.AppKey("recorder", RecordService)  # set by ``relaycast serve`` (not API-only apps)
PLAYBACK = web.AppKey("playback", PlaybackService)  # likewise
PLAYOUT = web.AppKey("playout", PlayoutService)  # likewise
NODE = web.AppKey("node", ThisNode)  # likewise: this process as a node of the installation
OPENAPI = web.AppKey("openapi", dict[str, str])
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
LAST_USED = web.AppKey("last_used", LastUsed)
