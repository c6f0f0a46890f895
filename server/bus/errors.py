"""Errors for misuse of the bus API (programming errors, not peer errors)."""

from __future__ import annotations


class BusError(Exception):
    """Base class for bus API misuse."""


class StreamEndedError(BusError):
    """Something was published to a stream after ``Stream.end()``."""


class StreamExistsError(BusError):
    """``Registry.create`` was asked for an id that is already live."""
