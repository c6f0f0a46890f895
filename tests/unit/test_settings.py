"""The settings model: layers, precedence, validation messages, the documented file."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_api.settings import Settings, SettingsError, load_settings

CONFIG = Path(__file__).parents[2] / "configs" / "relaycast.toml"


def test_documented_config_loads_and_equals_defaults() -> None:
    assert load_settings(CONFIG, environ={}) == Settings()


def test_every_setting_is_documented_in_the_example() -> None:
    text = CONFIG.read_text()
    for section, _model in Settings.model_fields.items():
        assert section in text, section
        sub = getattr(Settings(), section)
        for field in getattr(type(sub), "model_fields", {}):
            assert field in text, f"{section}.{field}"


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nhttp_port = 1111\nlog_level = 'debug'\n[rtmp]\nport = 2222\n")
    env = {
        "RELAYCAST_SERVER__HTTP_PORT": "3333",
        "RELAYCAST_REGIONS": '["a","b"]',
        "RELAYCAST_DEFAULT_REGION": "a",
    }
    s = load_settings(cfg, environ=env, overrides={"rtmp": {"port": 4444}})
    assert s.server.http_port == 3333
    assert s.server.log_level == "debug"
    assert s.rtmp.port == 4444
    assert s.regions == ["a", "b"]


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[api]\nrate_limit_per_minute = 7\n")
    assert load_settings(environ={"RELAYCAST_CONFIG": str(cfg)}).api.rate_limit_per_minute == 7


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("[rtmp]\nport = 70000\n", {}, "invalid setting rtmp.port:"),
        ("[rtmp]\nprot = 1\n", {}, "invalid setting rtmp.prot: unknown setting"),
        (
            "",
            {"RELAYCAST_API__RATE_LIMIT_PER_MINUTE": "lots"},
            "invalid setting api.rate_limit_per_minute",
        ),
        ("default_plan = 'gold'\n", {}, "default_plan 'gold' is not one of plans"),
        ("[rtmps]\ncert = '/x.pem'\n", {}, "rtmps.cert and rtmps.key must be set together"),
        ("[server\n", {}, "invalid TOML"),
        ("", {"RELAYCAST_REGIONS": "[oops"}, "RELAYCAST_REGIONS: not valid JSON"),
    ],
)
def test_invalid_settings_name_the_setting(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, environ=env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(Path("/nonexistent/relaycast.toml"), environ={})


def test_advertised_host() -> None:
    assert (
        load_settings(
            environ={}, overrides={"server": {"host": "10.1.2.3"}}
        ).server.advertised_host()
        == "10.1.2.3"
    )
    s = load_settings(environ={}, overrides={"server": {"public_host": "live.example.com"}})
    assert s.server.advertised_host() == "live.example.com"
    assert load_settings(environ={}).server.advertised_host()  # the machine's host name


def test_database_url_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={}, overrides={"server": {"data_dir": str(tmp_path)}})
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/relaycast.db"


def test_hlsjs_variable_is_not_read_as_a_setting() -> None:
    """``RELAYCAST_HLSJS`` (documented for the player page) must not stop the server."""
    assert load_settings(environ={"RELAYCAST_HLSJS": "/opt/hls.min.js"}) == Settings()


def test_the_pure_python_switch_is_not_read_as_a_setting() -> None:
    """``RELAYCAST_NO_EXTENSIONS=1`` (server.accel) must not stop ``relaycast serve``."""
    assert load_settings(environ={"RELAYCAST_NO_EXTENSIONS": "1"}) == Settings()
