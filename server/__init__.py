"""relaycast media plane: protocols, media formats, fan-out bus, ingest and outputs."""

from server import accel

# Before any hot module is imported: RELAYCAST_NO_EXTENSIONS=1 must reach every import.
accel.install()
