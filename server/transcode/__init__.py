"""Renditions: a worker process per transcoded stream decodes the source once and
encodes each rung of its quality ladder, publishing every rung onto a bus of its own."""
