"""relaycast media plane: protocols, media formats, fan-out bus, ingest and outputs."""
