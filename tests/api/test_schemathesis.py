"""A bounded schemathesis run against the served OpenAPI document: no 500s, no schema breaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.serverproc import start_server

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "positive_data_acceptance",
        "negative_data_rejection",
    ]
)


def test_schemathesis_finds_no_server_errors_or_schema_breaks(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "1000000"})
    try:
        key = server.bootstrap_key
        assert key
        st = Path(sys.executable).with_name("st")
        result = subprocess.run(
            [
                str(st),
                "run",
                f"{server.base}/v1/openapi.json",
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                CHECKS,
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--request-timeout",
                "10",
                "--generation-database",
                "none",
                "--no-color",
                # revoking the very key the run authenticates with would end the run early
                "--exclude-operation-id",
                "revoke_api_key",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    finally:
        server.stop()
    assert not any("Traceback" in line for line in server.stderr), "".join(server.stderr)[-4000:]
