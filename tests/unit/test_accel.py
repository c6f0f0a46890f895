"""server.accel: which implementation of the hot modules runs, and forcing the pure one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server import accel


def test_the_list_names_importable_modules_with_their_source() -> None:
    assert "server.protocols.rtmp.chunk" in accel.ACCELERATED
    for name, kind in accel.implementations().items():
        assert kind in (accel.COMPILED, accel.PURE), name


@pytest.mark.parametrize(
    ("value", "disabled"), [("", False), ("0", False), ("1", True), ("yes", True)]
)
def test_the_environment_switch(value: str, disabled: bool) -> None:
    assert accel.extensions_disabled({accel.ENV_NO_EXTENSIONS: value}) is disabled
    assert accel.extensions_disabled({}) is False


def test_no_extensions_forces_the_pure_path() -> None:
    env = {**os.environ, accel.ENV_NO_EXTENSIONS: "1"}
    code = "from server import accel; print(accel.summary())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == accel.PURE


def test_load_pure_leaves_the_imported_modules_in_place() -> None:
    from server.media import nal

    before = {name: sys.modules[name] for name in accel.ACCELERATED if name in sys.modules}
    pure = accel.load_pure()
    assert {name: sys.modules[name] for name in before} == before
    assert all(sys.modules[name] is not pure[name] for name in accel.ACCELERATED)
    from server.media import nal as again

    assert again is nal
    assert not any(accel.is_compiled(module) for module in pure.values())
    flv = pure["server.media.flv"]
    assert flv.normalize_length_size is pure["server.media.nal"].normalize_length_size


def test_load_pure_leaves_what_the_modules_import_bound_to_the_process_own() -> None:
    # A fresh process that imported one accelerated module: loading the twins must not
    # be the first import of the modules they import (the bus package re-exports the
    # registry, a session builds its meter), or those would keep the pure classes and
    # the compiled claim would refuse the pure meter (TypeError) in later tests.
    script = """
import sys
from server import accel
import server.media.frame
pure = accel.load_pure()
import server.bus, server.bus.registry, server.ingest.meter, server.ingest.sessions
from server.ingest.claim import Claim
assert server.bus.Registry is server.bus.registry.Registry
assert server.ingest.sessions.IngestMeter is server.ingest.meter.IngestMeter
assert Claim is not pure["server.ingest.claim"].Claim
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_ci_runs_the_compiled_path() -> None:
    """CI builds the extensions (scripts/test.sh installs a compiler): if this fails
    there, the compiled hot path was never built, so never tested."""
    if not os.environ.get("CI") or accel.extensions_disabled():
        pytest.skip("only CI guarantees a compiler (and RELAYCAST_NO_EXTENSIONS=1 is off)")
    assert accel.summary() == accel.COMPILED, accel.implementations()


def _tree(tmp_path: Path, manifest: bool = True) -> Path:
    """A fake install: every accelerated module's source and, maybe, the build manifest."""
    hashes = {}
    for name in accel.ACCELERATED:
        source = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {name}\n")
        hashes[name] = hashlib.sha256(source.read_bytes()).hexdigest()
    root = tmp_path / "server"
    if manifest:
        (root / "accel_build.json").write_text(json.dumps({"modules": hashes}))
    return root


def test_a_build_matching_its_source_is_used(tmp_path: Path) -> None:
    assert accel._pure_reason({}, _tree(tmp_path)) is None


def test_an_edited_source_forces_the_pure_path(tmp_path: Path) -> None:
    """Compiled old code must never run in place of edited source (stale in-place build)."""
    root = _tree(tmp_path)
    (tmp_path / "server" / "media" / "nal.py").write_text("# edited\n")
    reason = accel._pure_reason({}, root)
    assert reason is not None and "server.media.nal" in reason and "rebuild" in reason


def test_no_build_manifest_or_the_switch_forces_the_pure_path(tmp_path: Path) -> None:
    assert "no compiled build" in str(accel._pure_reason({}, _tree(tmp_path, manifest=False)))
    switch = {accel.ENV_NO_EXTENSIONS: "1"}
    assert accel._pure_reason(switch, _tree(tmp_path)) == f"{accel.ENV_NO_EXTENSIONS}=1"
