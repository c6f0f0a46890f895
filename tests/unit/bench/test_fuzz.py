"""The fuzzer itself, small: every target clean on 2000 inputs, runs replayable, and a
parser that raises the wrong exception is reported (so a clean run means something)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from bench import fuzz as bench_fuzz
from bench.fuzz import fuzz, main
from bench.fuzz_mutate import mutate, splits
from bench.fuzz_targets import Target, targets
from server.protocols.srt import SrtConnection, SrtListener

TARGETS = targets()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_2000_inputs(name: str) -> None:
    line = fuzz(TARGETS[name], 2000, seed=7)
    assert line["violations"] == {}, json.dumps(line["violations"], indent=1)
    assert line["inputs"] == 2000


def test_corpus_vectors_are_valid_for_their_parser() -> None:
    """Unmutated vectors pass cleanly: mutations start from real protocol, not noise."""
    rng = random.Random(0)
    for target in TARGETS.values():
        for vector in target.corpus:
            if target.name == "srt-packet":
                continue  # one parser per packet kind: the others refuse it, as they must
            target.run(vector, rng)


def test_parsers_do_refuse_most_mutations() -> None:
    """The edits reach past the first checks: the allowed errors are raised, often."""
    line = fuzz(TARGETS["amf0"], 2000, seed=1)
    assert 200 < line["allowed_raised"]["ProtocolError"] < 2000
    assert fuzz(TARGETS["flv"], 2000, seed=1)["allowed_raised"]["MediaFormatError"] > 100


def test_same_seed_same_inputs() -> None:
    corpus = TARGETS["rtmp"].corpus
    one, two = random.Random("5:x"), random.Random("5:x")
    assert [mutate(one, corpus) for _ in range(200)] == [mutate(two, corpus) for _ in range(200)]


def test_splits_cover_the_stream() -> None:
    rng = random.Random(3)
    data = bytes(range(256)) * 4
    seen_bytewise = False
    for _ in range(50):
        parts = splits(rng, data)
        assert b"".join(parts) == data
        seen_bytewise |= len(parts) == len(data)
    assert seen_bytewise


def _index_error(data: bytes, rng: random.Random) -> None:
    if len(data) > 3:
        raise IndexError("out of range")
    raise ValueError("allowed")


def test_a_foreign_exception_is_a_violation_with_its_input() -> None:
    target = Target("bad", "raises IndexError", [b"abcdef"], _index_error, (ValueError,))
    line = fuzz(target, 300, seed=1)
    [(where, found)] = line["violations"].items()
    assert where.startswith("IndexError at test_fuzz.py")
    assert found["count"] + line["allowed_raised"].get("ValueError", 0) == 300
    assert bytes.fromhex(found["hex"])[: found["length"]]


def test_cli_writes_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--inputs", "50", "--target", "ts,amf0", "--seed", "3", "--out", str(tmp_path)]) == 0
    )
    [json_file] = tmp_path.glob("fuzz-*.json")
    written = json.loads(json_file.read_text())
    assert [r["target"] for r in written["results"]] == ["ts", "amf0"]
    assert written["seed"] == 3 and written["versions"]["python"]
    assert "| ts | 50 |" in next(tmp_path.glob("fuzz-*.md")).read_text()


def test_srt_listener_vectors_reach_an_established_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unmutated sessions are accepted (plain and encrypted), so mutations of them
    fuzz the established connection, not only the handshake."""
    accepted: list[SrtConnection] = []
    accept = SrtListener.accept

    def recording(self: SrtListener, *args: Any, **kwargs: Any) -> SrtConnection | None:
        conn = accept(self, *args, **kwargs)
        if conn is not None:
            accepted.append(conn)
        return conn

    monkeypatch.setattr(SrtListener, "accept", recording)
    target = TARGETS["srt-listener"]

    class Always(random.Random):
        def randrange(self, *args: Any, **kwargs: Any) -> int:
            return 0  # the encrypted request is accepted too (1 in 16 otherwise)

    for vector in target.corpus:
        target.run(vector, Always())
    assert len(accepted) == len(target.corpus)


def _loops_on_long_inputs(data: bytes, rng: random.Random) -> None:
    while len(data) > 5:
        pass


def test_an_input_that_hangs_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """How the TS demuxer's endless loop on scrambled packets was found."""
    monkeypatch.setattr(bench_fuzz, "SLOW_CPU_SECONDS", 0.05)
    target = Target("hang", "loops", [b"abcdef"], _loops_on_long_inputs, ())
    line = fuzz(target, 20, seed=1)
    [(where, found)] = line["violations"].items()
    assert where.startswith("SlowInput at test_fuzz.py") and found["length"] > 5
