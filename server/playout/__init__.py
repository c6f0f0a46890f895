"""Channels: a live stream fed by its media queue instead of an encoder.

Items are decoded and conformed to the channel's profile in a worker process, paced
in real time on the event loop and published through the ingest manager like any
publisher (protocol ``playout``), so every output works unchanged.
"""
