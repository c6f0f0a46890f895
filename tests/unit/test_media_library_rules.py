"""Pure rules of the media library: tus headers, import target policy, URL naming."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from datetime import UTC, datetime

import pytest

from control_api.media_library import tus
from control_api.media_library.importer import name_from_url
from control_api.media_library.targets import TargetPolicy, TargetRefused
from control_api.media_library.tus import TusProblem


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_metadata_round_trip_and_empty_values() -> None:
    raw = f"filename {b64('Café clip.mp4')},folderId {b64('fld_1')},is_confidential"
    assert tus.parse_metadata(raw) == {
        "filename": "Café clip.mp4",
        "folderId": "fld_1",
        "is_confidential": "",
    }
    assert tus.parse_metadata(None) == {} and tus.parse_metadata("  ") == {}


@pytest.mark.parametrize(
    "raw",
    [
        "filename !!!",
        f"filename {b64('a')},filename {b64('b')}",
        f"filename {b64('a')},",
        "filename " + base64.b64encode(b"\xff\xfe").decode(),
        "x " + "A" * 9000,
    ],
)
def test_bad_metadata_is_a_400(raw: str) -> None:
    with pytest.raises(TusProblem) as err:
        tus.parse_metadata(raw)
    assert err.value.status == 400 and err.value.headers["Tus-Resumable"] == "1.0.0"


def test_filename_is_required_and_one_line() -> None:
    assert tus.filename({"filename": " a.mp4 "}) == "a.mp4"
    for bad in ({}, {"filename": ""}, {"filename": "a\nb"}, {"filename": "x" * 256}):
        with pytest.raises(TusProblem) as err:
            tus.filename(bad)
        assert err.value.status == 422


def test_lengths_offsets_and_versions() -> None:
    assert tus.upload_length({"Upload-Length": "10"}, 10) == 10
    with pytest.raises(TusProblem) as too_big:
        tus.upload_length({"Upload-Length": "11"}, 10)
    assert too_big.value.status == 413 and too_big.value.headers["Tus-Max-Size"] == "10"
    for headers in ({}, {"Upload-Length": "-1"}, {"Upload-Length": "1e3"}, {"Upload-Length": "٣"}):
        with pytest.raises(TusProblem) as err:
            tus.upload_length(headers, 10)
        assert err.value.status == 400
    assert tus.upload_offset({"Upload-Offset": "0"}) == 0
    with pytest.raises(TusProblem) as version:
        tus.require_version({"Tus-Resumable": "0.2.2"})
    assert version.value.status == 412 and version.value.headers["Tus-Version"] == "1.0.0"


def test_checksum_header() -> None:
    digest = hashlib.sha1(b"abc").digest()
    parsed = tus.upload_checksum({"Upload-Checksum": "sha1 " + base64.b64encode(digest).decode()})
    assert parsed is not None and parsed.digest == digest
    hasher = parsed.hasher()
    hasher.update(b"abc")
    assert hasher.digest() == digest
    assert tus.upload_checksum({}) is None
    for bad in ("crc32 AAAA", "sha1 ***", "sha1 " + base64.b64encode(b"short").decode()):
        with pytest.raises(TusProblem) as err:
            tus.upload_checksum({"Upload-Checksum": bad})
        assert err.value.status == 400


def test_checksum_mismatch_is_460_problem_json() -> None:
    response = tus.checksum_mismatch("sha1").response()
    assert response.status == 460 and response.reason == "Checksum Mismatch"
    assert response.content_type == "application/problem+json"
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_http_date() -> None:
    assert (
        tus.http_date(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "Fri, 02 Jan 2026 03:04:05 GMT"
    )


@pytest.mark.parametrize(
    ("address", "port", "private_ok", "refused"),
    [
        ("93.184.216.34", 80, False, None),
        ("10.1.2.3", 80, False, "private or local"),
        ("127.0.0.1", 80, False, "private or local"),
        ("::1", 80, False, "private or local"),
        ("fd00::1", 80, False, "private or local"),
        ("100.64.0.1", 80, False, "private or local"),
        ("10.1.2.3", 80, True, None),
        ("127.0.0.1", 80, True, None),
        ("127.0.0.1", 8080, True, "own HTTP port"),
        ("0.0.0.0", 8080, True, "own HTTP port"),
        ("169.254.169.254", 80, True, "link-local"),
        ("::ffff:169.254.169.254", 80, True, "link-local"),
        ("fe80::1", 80, True, "link-local"),
        ("239.1.1.1", 80, True, "multicast"),
    ],
)
def test_target_policy(address: str, port: int, private_ok: bool, refused: str | None) -> None:
    policy = TargetPolicy(private_ok, lambda: 8080)
    reason = policy.refusal(ipaddress.ip_address(address), port)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_literal_hosts_are_checked_and_names_left_to_the_resolver() -> None:
    policy = TargetPolicy(False, lambda: 8080)
    with pytest.raises(TargetRefused):
        policy.check_host("[::1]", 80)
    policy.check_host("example.com", 80)  # resolved (and checked) when connecting


def test_import_names_come_from_the_url() -> None:
    assert name_from_url("https://cdn.example.com/shows/Ep%201.mp4?sig=x") == "Ep 1.mp4"
    assert name_from_url("https://cdn.example.com/") == "cdn.example.com"
    assert name_from_url("http://[") == "import"
