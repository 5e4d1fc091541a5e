from __future__ import annotations

from pathlib import Path

import pytest

from morningstar.config import Settings, iter_secrets, load_settings, settings_as_dict
from morningstar.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MORNINGSTAR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no config/config.yaml here: defaults unless a path is given


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repository_config_file_is_valid() -> None:
    settings = load_settings(REPO / "config" / "config.yaml", secrets_file=None)
    assert settings.exchanges["binance"].pairs == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert settings.risk.max_position_pct == 10
    assert settings.llm.provider == "offline"


def test_defaults_without_file() -> None:
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.api.host == "127.0.0.1"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("morningstar.sqlite")


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.risk.max_position_pct = 50  # type: ignore[misc]


def test_out_of_range_value_names_key_file_and_bound(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_position_pct: 150\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"risk.max_position_pct: 150 is not <= 100 ({path})"


def test_unknown_key_has_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_positon_pct: 15\n")
    with pytest.raises(
        ConfigError, match=r"risk\.max_positon_pct: unknown key; did you mean 'max_position_pct'\?"
    ):
        load_settings(path)


def test_unknown_section_has_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "riks:\n  max_position_pct: 15\n")
    with pytest.raises(ConfigError, match=r"riks: unknown key; did you mean 'risk'\?"):
        load_settings(path)


def test_unknown_key_inside_exchange(tmp_path: Path) -> None:
    path = write(tmp_path, "exchanges:\n  binance:\n    timefrmes: [1h]\n")
    with pytest.raises(
        ConfigError, match=r"exchanges\.binance\.timefrmes: unknown key; did you mean 'timeframes'"
    ):
        load_settings(path)


def test_literal_value_lists_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "llm:\n  provider: gpt\n")
    with pytest.raises(
        ConfigError, match=r"llm\.provider: 'gpt' is not one of 'offline', 'openai' or 'ollama'"
    ):
        load_settings(path)


def test_bad_pair_and_timeframe(tmp_path: Path) -> None:
    path = write(tmp_path, "exchanges:\n  binance:\n    pairs: [BTCUSDT]\n")
    with pytest.raises(ConfigError, match=r"exchanges\.binance\.pairs: unknown pair 'BTCUSDT'"):
        load_settings(path)
    path = write(tmp_path, "exchanges:\n  binance:\n    timeframes: [1y]\n")
    with pytest.raises(
        ConfigError, match=r"exchanges\.binance\.timeframes: unknown timeframe '1y'"
    ):
        load_settings(path)


def test_several_errors_are_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_position_pct: 150\n  max_open_positions: 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "(and 1 more: run `morningstar config check`)" in str(info.value)
    assert len(info.value.errors) == 2  # type: ignore[attr-defined]


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_position_pct: [1,\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+:\d+: invalid YAML"):
        load_settings(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_env_overrides_file_and_is_named_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "risk:\n  max_position_pct: 10\n")
    monkeypatch.setenv("MORNINGSTAR_RISK__MAX_POSITION_PCT", "7.5")
    assert load_settings(path).risk.max_position_pct == 7.5
    monkeypatch.setenv("MORNINGSTAR_RISK__MAX_POSITION_PCT", "700")
    with pytest.raises(
        ConfigError,
        match=r"risk\.max_position_pct: 700 is not <= 100 \(env MORNINGSTAR_RISK__MAX_POSITION_PCT\)",
    ):
        load_settings(path)


def test_secret_in_config_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "exchanges:\n  binance:\n    api_key: abcdef123456\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert "secrets are not allowed in the config file" in message
    assert "MORNINGSTAR_EXCHANGES__BINANCE__API_KEY" in message
    assert "abcdef123456" not in message


SECRET = "sk-live-THIS-MUST-NEVER-BE-PRINTED"


def test_secrets_from_env_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "exchanges:\n  binance:\n    pairs: [BTC/USDT]\n")
    monkeypatch.setenv("MORNINGSTAR_EXCHANGES__BINANCE__API_KEY", SECRET)
    settings = load_settings(path)
    key = settings.exchanges["binance"].api_key
    assert key is not None and key.get_secret_value() == SECRET
    assert settings.exchanges["binance"].pairs == ["BTC/USDT"]
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in str(settings_as_dict(settings))
    assert SECRET in list(iter_secrets(settings))


def test_secrets_file(tmp_path: Path) -> None:
    path = write(tmp_path, "llm:\n  provider: openai\n")
    secrets = write(tmp_path, f"llm:\n  api_key: {SECRET}\n", "secrets.yaml")
    settings = load_settings(path, secrets_file=secrets)
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == SECRET
    bad = write(tmp_path, "risk:\n  max_position_pct: 5\n", "secrets2.yaml")
    with pytest.raises(ConfigError, match="only secret keys belong in the secrets file"):
        load_settings(path, secrets_file=bad)


def test_database_password_hidden(tmp_path: Path) -> None:
    path = write(
        tmp_path, "database:\n  url: postgresql+psycopg://trader:hunter2pw@db.example/ms\n"
    )
    settings = load_settings(path)
    shown = settings_as_dict(settings)
    assert "hunter2pw" not in str(shown)
    assert shown["database"]["url"] == "postgresql+psycopg://trader:***@db.example/ms"
    assert "hunter2pw" in list(iter_secrets(settings))


def test_unknown_env_section_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORNINGSTAR_RISKS__MAX_POSITION_PCT", "5")
    with pytest.raises(
        ConfigError,
        match=r"MORNINGSTAR_RISKS__MAX_POSITION_PCT — did you mean MORNINGSTAR_RISK__\.\.\.\?",
    ):
        load_settings()


def test_env_without_level_separator_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORNINGSTAR_RISK_MAX_POSITION_PCT", "5")
    with pytest.raises(ConfigError, match="unknown setting MORNINGSTAR_RISK_MAX_POSITION_PCT"):
        load_settings()


def test_validation_policies_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  policies: {gapp: warn}\n")
    with pytest.raises(
        ConfigError,
        match=rf"data\.policies: unknown validation check 'gapp' — did you mean 'gap'\? \({path}\)",
    ):
        load_settings(path)
    path = write(tmp_path, "data:\n  policies: {duplicate: ffill}\n")
    with pytest.raises(
        ConfigError, match=r"data\.policies: policy 'ffill' is not available for check duplicate"
    ):
        load_settings(path)
    assert load_settings(write(tmp_path, "data:\n  policies: {gap: ffill}\n")).data.policies == {
        "gap": "ffill"
    }
