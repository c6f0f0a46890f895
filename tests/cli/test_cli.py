"""Every ``relaycast`` command as a user runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.serverproc import RELAYCAST


def rc(*args: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data)] if data is not None else []
    return subprocess.run([*RELAYCAST, *args, *extra], capture_output=True, text=True, timeout=60)


def test_version_and_help() -> None:
    out = rc("--version")
    assert out.returncode == 0 and out.stdout.startswith("relaycast ")
    for cmd in (
        [],
        ["serve"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["env"],
        ["env", "list"],
        ["env", "create"],
        ["migrate"],
    ):
        helped = rc(*cmd, "--help")
        assert helped.returncode == 0 and "usage: relaycast" in helped.stdout, cmd


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    made = rc(
        "keys",
        "create",
        "--name",
        "ci",
        "--env",
        "staging",
        "--access",
        "restricted",
        "--cors-origin",
        "https://a.example",
        "--cors-origin",
        "https://b.example",
        data=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("rk_")
    as_json = rc("keys", "create", "--name", "j", "--json", data=tmp_path)
    obj = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert obj["key"].startswith("rk_") and obj["keyId"].startswith("key_")
    assert obj["environment"] == "default"
    listing = json.loads(rc("keys", "list", "--json", data=tmp_path).stdout)
    assert {k["environment"] for k in listing} == {"staging", "default"}
    assert all(secret not in json.dumps(k) and "key" not in k for k in listing)
    staging = json.loads(rc("keys", "list", "--env", "staging", "--json", data=tmp_path).stdout)
    assert staging[0]["corsOrigins"] == ["https://a.example", "https://b.example"]
    plain = rc("keys", "list", data=tmp_path)
    assert obj["keyId"] in plain.stdout and obj["key"] not in plain.stdout
    assert rc("keys", "revoke", obj["keyId"], data=tmp_path).returncode == 0
    again = rc("keys", "revoke", obj["keyId"], data=tmp_path)
    assert again.returncode == 1 and "no active API key" in again.stderr
    assert obj["keyId"] not in rc("keys", "list", data=tmp_path).stdout


def test_env_commands_and_migrate(tmp_path: Path) -> None:
    assert rc("env", "create", "prod", data=tmp_path).returncode == 0
    dup = rc("env", "create", "prod", data=tmp_path)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    assert rc("env", "list", data=tmp_path).stdout.split() == ["prod"]
    migrated = rc("migrate", data=tmp_path)
    assert migrated.returncode == 0 and "up to date" in migrated.stdout
    missing = rc("keys", "list", "--env", "nope", data=tmp_path)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["keys", "create"], "--name"),
        (["keys", "create", "--name", "x", "--access", "root"], "--access"),
        (["keys", "create", "--name", "x", "--cors-origin", "nota/origin"], "--cors-origin"),
        (["serve", "--http-port", "abc"], "--http-port"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_line(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    out = rc(*args, data=tmp_path)
    assert out.returncode == 2
    assert needle in out.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[rtmp]\nport = 'x'\n", "invalid setting rtmp.port"),
        ("[rtmp\n", "invalid TOML"),
        ("[nope]\na = 1\n", "invalid setting nope: unknown setting"),
    ],
)
def test_bad_config_file_stops_with_one_line(tmp_path: Path, content: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    for command in (["serve"], ["keys", "list"]):
        out = rc(*command, "--config", str(cfg), data=tmp_path)
        assert out.returncode == 2, out
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("relaycast: error:")


def test_serve_refuses_an_encoder_the_local_ffmpeg_lacks(tmp_path: Path) -> None:
    cfg = tmp_path / "hw.toml"
    cfg.write_text("[transcode]\nencoder = 'h264_nosuchhw'\n")
    out = rc("serve", "--config", str(cfg), data=tmp_path)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relaycast: error:")
    assert "transcode.encoder" in lines[0] and "h264_nosuchhw" in lines[0]
