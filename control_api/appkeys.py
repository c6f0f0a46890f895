"""Typed application keys: what the app factory puts on the app for handlers to find."""

from __future__ import annotations

from aiohttp import web

from control_api.cors import OriginCache
from control_api.media_library.library import MediaLibrary
from control_api.ratelimit import RateLimiter
from control_api.settings import Settings
from control_api.store import Store
from control_api.urls import Endpoints
from control_api.webhooks.dispatcher import Dispatcher
from server.ingest.manager import IngestManager

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
LIMITER = web.AppKey("limiter", RateLimiter)
SIGNING_KEY = web.AppKey("signing_key", bytes)
ORIGINS = web.AppKey("origins", OriginCache)
INGEST = web.AppKey("ingest", IngestManager)
LIBRARY = web.AppKey("library", MediaLibrary)
WEBHOOKS = web.AppKey("webhooks", Dispatcher)
