"""Playback over RTMP and SRT: a player is a bus reader like any other output.

:mod:`service` finds the live stream of an edge id and admits players (playback
token, the plan's maxClients across HLS, RTMP and SRT); :mod:`viewers` counts them;
:mod:`fanout` feeds all RTMP players of a stream from one reader, chunking each
message once; :mod:`rtmp` is one such player; :mod:`relay` brings a stream another
node carries to this node's RTMP players.
"""

from .service import PlaybackService, PlayRefused, PlayTicket
from .viewers import Viewership, ViewershipStats

__all__ = ["PlayRefused", "PlayTicket", "PlaybackService", "Viewership", "ViewershipStats"]
