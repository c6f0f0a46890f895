"""``TrackKind`` is the key of the per-track dicts every frame passes through."""

from __future__ import annotations

import pickle

from server.media.frame import TrackKind


def test_track_kinds_hash_in_c_by_identity_and_stay_usable_keys() -> None:
    # Enum.__hash__ is a Python call per lookup; the members are singletons compared by
    # identity, so the identity hash (computed in C) is the same contract, cheaper
    assert vars(TrackKind)["__hash__"] is object.__hash__
    keys = {kind: kind.value for kind in TrackKind}
    assert keys[TrackKind("video")] == "video" and len(keys) == 3
    assert pickle.loads(pickle.dumps(TrackKind.AUDIO)) is TrackKind.AUDIO
    assert hash(TrackKind.VIDEO) == object.__hash__(TrackKind.VIDEO)
