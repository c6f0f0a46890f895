"""A node's settings: name, region, lease, and what a node keeps apart on a shared disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_api.media import recordings_root
from control_api.settings import SettingsError, load_settings


def test_node_defaults_to_host_name_and_default_region() -> None:
    settings = load_settings(environ={"RELAYCAST_DEFAULT_REGION": "local"})
    assert settings.node.name is None and settings.node.resolved_name()
    assert settings.node_region == "local" and settings.node.lease_seconds == 15


def test_node_region_must_be_a_configured_region() -> None:
    env = {"RELAYCAST_REGIONS": '["eu-1","us-1"]', "RELAYCAST_DEFAULT_REGION": "eu-1"}
    assert load_settings(environ={**env, "RELAYCAST_NODE__REGION": "us-1"}).node_region == "us-1"
    with pytest.raises(SettingsError, match=r"node\.region 'ap-1' is not one of regions"):
        load_settings(environ={**env, "RELAYCAST_NODE__REGION": "ap-1"})
    with pytest.raises(SettingsError, match=r"invalid setting node\.name"):
        load_settings(environ={"RELAYCAST_NODE__NAME": "a b"})


def test_named_nodes_record_into_their_own_folder(tmp_path: Path) -> None:
    alone = load_settings(environ={}, overrides={"server": {"data_dir": tmp_path}})
    assert recordings_root(alone) == tmp_path / "recordings"
    named = load_settings(
        environ={"RELAYCAST_NODE__NAME": "box-2"}, overrides={"server": {"data_dir": tmp_path}}
    )
    assert recordings_root(named) == tmp_path / "recordings" / "box-2"
