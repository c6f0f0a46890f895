"""WebRTC: WHIP ingest and WHEP playback on aiortc, media kept as the bus has it.

:mod:`peer` wraps aiortc (peer setup, offer checks, codec choice, taps on encoded
frames); :mod:`whip` is a publisher, :mod:`whep` a viewer; :mod:`service` holds the
sessions under their bound; :mod:`http` is the RFC 9725 HTTP face; :mod:`h264` and
:mod:`audio` convert between RTP's media and the bus's.
"""
