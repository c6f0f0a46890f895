"""A/V drift over hours of playout, simulated at full speed (``bench.channel_drift``;
the bench's ``channel`` scenario runs a whole day).

After thousands of items whose frame rates, sample rates and audio spans differ, the
audio must still be within one output frame of the video, and no item may make more
or less output than its length by more than a frame.
"""

from __future__ import annotations

import pytest

from bench.channel_drift import simulate


@pytest.mark.serial  # about ten seconds of pure arithmetic
def test_three_hours_of_playout_keep_audio_within_one_frame_of_video() -> None:
    """Before the overlap bound was half an AAC frame, the audio surplus of each item
    (AAC padding) piled up and passed a frame after 256 items (37 minutes); before the
    last frame could be dropped, an item could come out a whole frame longer."""
    drift = simulate(3)
    assert drift.items > 1000 and drift.seconds >= 3 * 3600
    assert 0 <= drift.final_skew < drift.frame
    assert drift.worst_skew < drift.frame, drift
    assert drift.worst_boundary < drift.frame, drift
