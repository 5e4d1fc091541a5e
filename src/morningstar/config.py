"""Typed, immutable settings from ``config/config.yaml``, environment variables and a secrets file.

Precedence (highest first):

1. environment variables ``MORNINGSTAR_<SECTION>__<KEY>`` (``__`` separates nesting levels, e.g.
   ``MORNINGSTAR_RISK__MAX_POSITION_PCT=5``, ``MORNINGSTAR_EXCHANGES__BINANCE__API_KEY=...``);
2. the secrets file (``config/secrets.yaml`` or ``MORNINGSTAR_SECRETS_FILE``): secret keys only;
3. the config file (``config/config.yaml`` or ``MORNINGSTAR_CONFIG``): no secrets allowed;
4. the defaults below.

Secrets (API keys, tokens, passwords) are :class:`pydantic.SecretStr`: they print as ``**********``
and are registered with the logging redaction filter. A bad file or value raises
:class:`morningstar.errors.ConfigError` whose message is one line naming the key path, the value,
what is allowed and where the value came from, e.g.
``risk.max_position_pct: 150 is not <= 100 (config/config.yaml)``; unknown keys get a
"did you mean" hint.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from morningstar.core.timeframe import parse_timeframe
from morningstar.core.types import parse_pair
from morningstar.errors import ConfigError
from morningstar.model.specs import FeatureSpec, LabelSpec

__all__ = [
    "ApiSettings",
    "DashboardSettings",
    "DataSettings",
    "DatabaseSettings",
    "DecisionSettings",
    "ErrorPolicies",
    "ExchangeSettings",
    "HeadsSpec",
    "LLMBudget",
    "LLMSettings",
    "LoggingSettings",
    "LossWeights",
    "ModelSettings",
    "NetworkSpec",
    "RiskSettings",
    "ScaleSettings",
    "Settings",
    "SizingSettings",
    "SupervisorSettings",
    "TrainSpec",
    "WorkflowSettings",
    "default_config_path",
    "iter_secrets",
    "load_settings",
    "settings_as_dict",
]

ENV_PREFIX = "MORNINGSTAR_"
DEFAULT_CONFIG = Path("config") / "config.yaml"
DEFAULT_SECRETS = Path("config") / "secrets.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExchangeSettings(_Section):
    """One exchange (key: its ccxt id, e.g. ``binance``)."""

    pairs: list[str] = Field(default_factory=list, description="markets, BASE/QUOTE")
    timeframes: list[str] = Field(default_factory=lambda: ["1h"], description="bar timeframes")
    api_base_url: str | None = Field(
        None, description="replace the host of every API URL (proxy, mirror, local stand-in)"
    )
    timeout_ms: int = Field(10_000, ge=1_000, le=120_000)
    sandbox: bool = False
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    password: SecretStr | None = None

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        return [str(parse_pair(p)) for p in value]

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, value: list[str]) -> list[str]:
        return [str(parse_timeframe(t)) for t in value]


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("morningstar", appauthor=False))


class DataSettings(_Section):
    """Where market data lives and how it is validated."""

    dir: Path = Field(default_factory=_default_data_dir, description="data directory")
    calendar: Literal["auto", "crypto", "forex", "cme", "equity"] = "auto"
    policies: dict[str, Literal["error", "warn", "drop", "ffill"]] = Field(
        default_factory=dict, description="validation policy per check, e.g. {gap: warn}"
    )

    @field_validator("dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, value: dict[str, str]) -> dict[str, str]:
        from morningstar.data.validation import resolve_policies
        from morningstar.errors import UserInputError

        try:
            resolve_policies(value)
        except UserInputError as exc:
            raise ValueError(exc.one_line()) from None
        return value


class DatabaseSettings(_Section):
    """SQL database: SQLite file in the data dir by default, any PostgreSQL URL to scale."""

    url: str | None = Field(None, description="SQLAlchemy URL; empty = SQLite in data.dir")
    echo: bool = False


class RiskSettings(_Section):
    """Hard risk limits, applied after the LLM supervisor (percentages of equity)."""

    max_position_pct: float = Field(10.0, gt=0, le=100)
    max_open_positions: int = Field(5, ge=1, le=1000)
    max_gross_exposure_pct: float = Field(100.0, gt=0, le=1000)
    per_asset_cap_pct: float = Field(25.0, gt=0, le=100)
    daily_loss_limit_pct: float = Field(5.0, gt=0, le=100)
    max_drawdown_pct: float = Field(20.0, gt=0, le=100)
    cooldown_bars_after_stop: int = Field(0, ge=0, le=10_000)
    per_pair_cap_pct: dict[str, float] = Field(
        default_factory=dict,
        description="per-pair caps replacing per_asset_cap_pct, e.g. DOGE/USDT: 5",
    )
    reduce_at_drawdown_pct: float | None = Field(
        None, gt=0, le=100, description="REDUCING from this drawdown; empty = max_drawdown_pct / 2"
    )
    reducing_size_factor: float = Field(
        0.5, ge=0, le=1, description="entry size factor when REDUCING"
    )
    flatten_on_halt: bool = Field(False, description="close every position when HALTED")
    min_notional: float = Field(0.0, ge=0, description="smallest entry, quote currency")

    @field_validator("per_pair_cap_pct")
    @classmethod
    def _pair_caps(cls, value: dict[str, float]) -> dict[str, float]:
        for pair, cap in value.items():
            parse_pair(pair)
            if not 0 < cap <= 100:
                raise ValueError(f"{pair}: {cap} is not in (0, 100]")
        return value

    @model_validator(mode="after")
    def _reduce_below_halt(self) -> RiskSettings:
        at = self.reduce_at_drawdown_pct
        if at is not None and at > self.max_drawdown_pct:
            raise ValueError(
                f"reduce_at_drawdown_pct ({at}) must be <= max_drawdown_pct ({self.max_drawdown_pct})"
            )
        return self


StepPolicy = Literal["retry", "skip", "halt"]


class DecisionSettings(_Section):
    """The rules that turn a prediction into an intent (``core.decision.DecisionParams``)."""

    min_confidence: float = Field(0.55, ge=0, le=1, description="confidence needed to open")
    allow_shorts: bool = False
    exit_on_opposite: bool = Field(True, description="close when the signal turns against")
    exit_min_confidence: float = Field(0.0, ge=0, le=1)
    exit_on_neutral: bool = False
    sl_sigma_mult: float = Field(2.0, gt=0, le=100, description="default stop, in sigma")
    tp_sigma_mult: float = Field(3.0, gt=0, le=100, description="default target, in sigma")
    adjust_stops: bool = Field(True, description="tighten stops as the model's stop moves")
    adjust_min_step_pct: float = Field(0.1, ge=0, le=100)
    supervise_adjusts: bool = Field(False, description="ask the LLM about stop adjustments too")


class SizingSettings(_Section):
    """Position sizing: ``risk`` (volatility target × confidence, capped Kelly; core.sizing) or
    ``fraction`` (a fixed fraction of equity, as the backtest engine's FractionSizing)."""

    mode: Literal["risk", "fraction"] = "risk"
    fraction: float = Field(1.0, gt=0, le=1, description="fraction mode: share of equity")
    target_vol_pct: float = Field(0.05, gt=0, le=100, description="per-bar volatility budget, %")
    confidence_floor: float = Field(1.0 / 3.0, ge=0, lt=1)
    kelly_fraction: float = Field(0.25, ge=0, le=1)
    max_risk_pct: float = Field(1.0, gt=0, le=100, description="equity lost at the stop, at most")
    max_position_pct: float = Field(10.0, gt=0, le=100)


class SupervisorSettings(_Section):
    """The LLM supervisor of step d (through the LLM gateway, ``llm.*``)."""

    enabled: bool = Field(True, description="consult the LLM on proposed changes")
    abstain: Literal["keep", "skip"] = Field(
        "keep", description="when the LLM fails: keep the rules' decision, or skip new entries"
    )
    latency_budget_s: float = Field(10.0, gt=0, le=600, description="timeout of one call")
    template: str = Field("market_assessment", min_length=1, description="prompt template id")


class ErrorPolicies(_Section):
    """What a failing step does: ``retry`` (with backoff, then skip), ``skip`` the cycle, ``halt``.

    The supervisor has no policy: an LLM failure always takes the abstain path. Features and
    prediction are one step (``predict``: the predictor's own preparation code computes the
    features); a bar whose features cannot be computed (warm-up, a gap, NaN inputs) has no
    prediction — logged and recorded as such, not an error — and a predictor that raises
    anything else follows ``predict``.
    """

    fetch: StepPolicy = "retry"
    predict: StepPolicy = "skip"
    decide: StepPolicy = "halt"
    execute: StepPolicy = "retry"
    persist: StepPolicy = "retry"
    retries: int = Field(3, ge=0, le=20, description="attempts after the first, for retry")
    backoff_s: float = Field(0.5, ge=0, le=60, description="first backoff; doubles, jittered")


class WorkflowSettings(_Section):
    """The trading workflow (``morningstar run``): market, predictor, decision, costs, policies."""

    mode: Literal["backtest", "paper"] = "backtest"
    venue: str = Field("binance", min_length=1, description="data venue / exchange id")
    pairs: list[str] = Field(default_factory=list, description="empty = the venue's pairs")
    timeframe: str = "1h"
    predictor: str = Field(
        "strategy:ema_cross",
        description="strategy:<name> (any engine strategy) or model:<artifact dir>",
    )
    predictor_params: dict[str, float | int | bool] = Field(default_factory=dict)
    initial_cash: float = Field(10_000.0, gt=0)
    fee_bps: float = Field(10.0, ge=0, le=1_000, description="taker fee per fill")
    slippage_bps: float = Field(0.0, ge=0, le=1_000, description="against each market fill")
    intrabar: Literal["stop_first", "target_first"] = "stop_first"
    bracket_orders: bool = Field(
        True, description="submit a protective stop and target with each entry"
    )
    poll_every_s: float = Field(10.0, gt=0, le=3_600, description="paper: exchange polling period")
    warmup_bars: int | None = Field(None, ge=1, le=1_000_000, description="empty = predictor's")
    decision: DecisionSettings = Field(default_factory=DecisionSettings)
    sizing: SizingSettings = Field(default_factory=SizingSettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    errors: ErrorPolicies = Field(default_factory=ErrorPolicies)

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        return [str(parse_pair(p)) for p in value]

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        parse_timeframe(value)
        return value

    @field_validator("predictor")
    @classmethod
    def _predictor(cls, value: str) -> str:
        kind, _, name = value.partition(":")
        if kind not in ("strategy", "model") or not name.strip():
            raise ValueError(
                f"{value!r} is not strategy:<name> or model:<artifact dir> "
                "(e.g. strategy:ema_cross, model:~/models/btc-v1)"
            )
        return value


class LLMBudget(_Section):
    """A spending limit: tokens (input + output) and/or US dollars; empty = no limit."""

    tokens: int | None = Field(None, ge=0)
    usd: float | None = Field(None, ge=0)


class LLMSettings(_Section):
    """The LLM gateway: provider, limits, replay cache, budgets and the monitor's tracing."""

    provider: Literal["offline", "openai", "ollama"] = "offline"
    model: str = "rule-based"
    base_url: str | None = Field(
        None, description="OpenAI-compatible /v1 URL or Ollama URL; empty = the provider's own"
    )
    api_key: SecretStr | None = None
    timeout_s: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(3, ge=0, le=10)
    max_concurrency: int = Field(4, ge=1, le=256)
    output_mode: Literal["auto", "json_schema", "tool", "json_object", "prompt"] = Field(
        "auto", description="structured answers: auto = the strongest the model's row allows"
    )
    temperature: float = Field(0.0, ge=0, le=2)
    seed: int | None = 0
    cache_mode: Literal["record", "replay", "off"] = "record"
    budget: LLMBudget = Field(default_factory=LLMBudget, description="per session (process)")
    agent_budgets: dict[str, LLMBudget] = Field(
        default_factory=dict, description="per caller, e.g. {strategist: {usd: 1.0}}"
    )
    capture: Literal["off", "truncated", "full"] = "truncated"
    stall_factor: float = Field(3.0, gt=1, le=100)
    queue_size: int = Field(10_000, ge=100, le=1_000_000)
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP traces endpoint; empty = off")


class ApiSettings(_Section):
    """REST API bind address; a token is required when bound to a non-loopback address."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65_535)
    token: SecretStr | None = None


class DashboardSettings(_Section):
    """Streamlit dashboard bind address."""

    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65_535)


class ScaleSettings(_Section):
    """Scale-out: Celery + Redis when a broker URL is set, in-process otherwise."""

    celery_broker_url: SecretStr | None = None
    celery_result_backend: SecretStr | None = None
    workers: int = Field(2, ge=1, le=256)


class LoggingSettings(_Section):
    """Console (human) and file (JSON lines) logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    file: Path | None = Field(None, description="JSON-lines log file; empty = <data.dir>/logs")
    file_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "DEBUG"


class HeadsSpec(_Section):
    """Which heads of the ML model are trained and predicted (at least one)."""

    signal: bool = Field(True, description="3-class direction: down / neutral / up")
    volatility: bool = Field(True, description="expected per-bar volatility over the horizon")
    regime: bool = Field(True, description="market regime class")
    sltp: bool = Field(True, description="stop-loss / take-profit distances (multiples of sigma)")

    @model_validator(mode="after")
    def _one_head(self) -> HeadsSpec:
        if not self.active:
            raise ValueError("switch at least one head on (signal, volatility, regime, sltp)")
        return self

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the heads switched on, in a fixed order."""
        return tuple(h for h in ("signal", "volatility", "regime", "sltp") if getattr(self, h))


class LossWeights(_Section):
    """Weight of each head's loss in the training loss (a weighted sum)."""

    signal: float = Field(1.0, ge=0, le=100)
    volatility: float = Field(0.5, ge=0, le=100)
    regime: float = Field(0.5, ge=0, le=100)
    sltp: float = Field(0.25, ge=0, le=100)


class NetworkSpec(_Section):
    """Size and shape of the EnhancedHybridModel (see docs/model.md)."""

    conv_channels: int = Field(32, ge=4, le=512, description="channels of the 1-D convolution")
    conv_kernel: int = Field(5, ge=1, le=31, description="kernel width in bars (odd)")
    conv_stride: int = Field(2, ge=1, le=8, description="stride: 2 halves the recurrent steps")
    rnn: Literal["gru", "lstm"] = "gru"
    hidden: int = Field(64, ge=4, le=1024, description="recurrent hidden size")
    layers: int = Field(1, ge=1, le=4, description="recurrent layers")
    dropout: float = Field(0.1, ge=0, lt=1)
    attention: bool = Field(True, description="attention pooling over time; off = last state")
    heads: HeadsSpec = Field(default_factory=HeadsSpec)
    loss_weights: LossWeights = Field(default_factory=LossWeights)

    @field_validator("conv_kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"{value} is not odd (the convolution is centred)")
        return value


class TrainSpec(_Section):
    """How the ML model is trained: chronological split, embargo, optimiser, early stopping."""

    val_fraction: float = Field(0.15, ge=0.02, le=0.5, description="validation share of bars")
    test_fraction: float = Field(0.15, ge=0.02, le=0.5, description="held-out test share")
    embargo: int | None = Field(
        None, ge=0, le=100_000, description="bars between windows; empty = the label horizon"
    )
    walk_forward_folds: int = Field(
        1, ge=1, le=20, description="> 1: retrain on an expanding window, one test window each"
    )
    epochs: int = Field(30, ge=1, le=1_000)
    batch_size: int = Field(256, ge=8, le=8_192)
    lr: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    patience: int = Field(5, ge=1, le=100, description="epochs without improvement, then stop")
    grad_clip: float = Field(1.0, ge=0, le=100, description="max gradient norm; 0 = off")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when present")
    torch_threads: int | None = Field(
        None, ge=1, le=256, description="CPU threads for torch; empty = torch's default"
    )
    max_bars: int | None = Field(
        None, ge=500, le=50_000_000, description="train on the last N bars only; empty = all"
    )


class ModelSettings(_Section):
    """The ML model: features, labels, network, training, where artifacts go (docs/model.md)."""

    features: FeatureSpec = Field(default_factory=FeatureSpec)
    labels: LabelSpec = Field(default_factory=LabelSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    training: TrainSpec = Field(default_factory=TrainSpec)
    artifacts_dir: Path | None = Field(
        None, description="where `morningstar train` saves models; empty = <data.dir>/models"
    )

    @field_validator("artifacts_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _embargo_covers_horizon(self) -> ModelSettings:
        embargo = self.training.embargo
        if embargo is not None and embargo < self.labels.horizon:
            raise ValueError(
                f"training.embargo ({embargo}) must be >= labels.horizon ({self.labels.horizon}):"
                " training labels would overlap the validation and test windows"
            )
        return self


class Settings(BaseSettings):
    """All settings. Build it with :func:`load_settings`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    exchanges: dict[str, ExchangeSettings] = Field(
        default_factory=lambda: {
            "binance": ExchangeSettings(pairs=["BTC/USDT", "ETH/USDT"], timeframes=["5m", "1h"])
        }
    )
    data: DataSettings = Field(default_factory=DataSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    scale: ScaleSettings = Field(default_factory=ScaleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the merged YAML files passed as init values."""
        return (env_settings, init_settings)

    @property
    def database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data.dir / 'morningstar.sqlite'}"

    @property
    def log_file(self) -> Path:
        """Where JSON-lines logs go."""
        return self.logging.file or self.data.dir / "logs" / "morningstar.jsonl"

    @property
    def models_dir(self) -> Path:
        """Where trained model artifacts go."""
        return self.model.artifacts_dir or self.data.dir / "models"


# --------------------------------------------------------------------------- loading
def default_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """``MORNINGSTAR_CONFIG`` or ``config/config.yaml`` when it exists, else None (defaults)."""
    env = os.environ if env is None else env
    if env.get(f"{ENV_PREFIX}CONFIG"):
        return Path(env[f"{ENV_PREFIX}CONFIG"])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{what} not found",
            where=str(path),
            hint="create it (see config/config.yaml in the repository) or pass --config",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} ({exc.strerror})", where=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", where=where) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"top level must be a mapping of sections, got {type(data).__name__}",
            where=str(path),
            hint="start with e.g. `risk:` on its own line",
        )
    return data


def _secret_paths(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Key paths of secret fields; ``*`` stands for any key of a dict section."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        path = (*prefix, name)
        if ann is not None and "SecretStr" in str(ann):
            yield path
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _secret_paths(ann, path)
        elif name == "exchanges":
            yield from _secret_paths(ExchangeSettings, (*path, "*"))


def _walk(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, (*prefix, str(key)))
    else:
        yield prefix, data


def _matches(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(path) == len(pattern) and all(
        p in ("*", k) for k, p in zip(path, pattern, strict=True)
    )


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    path: str | Path | None = None,
    *,
    secrets_file: str | Path | None = None,
    use_default_path: bool = True,
) -> Settings:
    """Load settings from the config file, the secrets file and the environment.

    Args:
        path: config file; None = ``MORNINGSTAR_CONFIG`` or ``config/config.yaml`` if present.
        secrets_file: secrets file; None = ``MORNINGSTAR_SECRETS_FILE`` or ``config/secrets.yaml``.
        use_default_path: look for the default files when ``path`` / ``secrets_file`` are None.

    Raises:
        ConfigError: one line naming the key path, the value, what is allowed and the source.
    """
    cfg_path = (
        Path(path) if path is not None else (default_config_path() if use_default_path else None)
    )
    data = _read_yaml(cfg_path, "config file") if cfg_path is not None else {}
    secret_patterns = list(_secret_paths(Settings))
    for key_path, _value in _walk(data):
        if any(_matches(key_path, pat) for pat in secret_patterns):
            dotted = ".".join(key_path)
            env_name = ENV_PREFIX + "__".join(k.upper() for k in key_path)
            raise ConfigError(
                "secrets are not allowed in the config file",
                where=f"{dotted} ({cfg_path})",
                hint=f"remove it and set {env_name} or put it in the secrets file",
            )
    if secrets_file is None and use_default_path:
        env_secrets = os.environ.get(f"{ENV_PREFIX}SECRETS_FILE")
        secrets_path: Path | None = Path(env_secrets) if env_secrets else DEFAULT_SECRETS
        if not env_secrets and not DEFAULT_SECRETS.is_file():
            secrets_path = None
    else:
        secrets_path = Path(secrets_file) if secrets_file is not None else None
    if secrets_path is not None:
        secrets = _read_yaml(secrets_path, "secrets file")
        for key_path, _value in _walk(secrets):
            if not any(_matches(key_path, pat) for pat in secret_patterns):
                raise ConfigError(
                    "only secret keys belong in the secrets file",
                    where=f"{'.'.join(key_path)} ({secrets_path})",
                    hint="move it to the config file",
                )
        data = _deep_merge(data, secrets)
    _check_env_sections()
    try:
        return Settings(**data)
    except ValidationError as exc:
        messages = [_describe(err, data, cfg_path, secrets_path) for err in exc.errors()]
        extra = (
            f" (and {len(messages) - 1} more: run `morningstar config check`)"
            if len(messages) > 1
            else ""
        )
        error = ConfigError(messages[0] + extra)
        error.errors = messages  # type: ignore[attr-defined]
        raise error from None
    except ValueError as exc:  # a malformed MORNINGSTAR_* variable (e.g. bad JSON for a list)
        raise ConfigError(
            f"bad environment variable: {exc}",
            hint=f"check the {ENV_PREFIX}* variables (lists and maps are JSON)",
        ) from None


_ENV_OWN = {"CONFIG", "SECRETS_FILE"}


def _check_env_sections() -> None:
    """Refuse ``MORNINGSTAR_*`` variables whose first part is not a settings section."""
    sections = list(Settings.model_fields)
    for name in sorted(os.environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if rest.upper() in _ENV_OWN or rest.upper().startswith("TEST_"):
            continue
        section = rest.split("__", 1)[0].lower()
        if section in sections and (section == rest.lower() or "__" in rest):
            continue
        close = difflib.get_close_matches(section, sections, n=1)
        hint = (
            f"did you mean {ENV_PREFIX}{close[0].upper()}__...?"
            if close
            else f"sections: {', '.join(sections)}; separate levels with __"
        )
        raise ConfigError(f"unknown setting {name}", where="environment", hint=hint)


def _env_name(loc: tuple[str, ...]) -> str:
    return ENV_PREFIX + "__".join(k.upper() for k in loc)


def _lookup(data: Mapping[str, Any], loc: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = data
    for key in loc:
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _fields_at(loc: tuple[str, ...]) -> list[str]:
    """Field names of the section at ``loc`` (for "did you mean" hints)."""
    model: type[BaseModel] = Settings
    i = 0
    while i < len(loc):
        field = model.model_fields.get(loc[i])
        if field is None:
            return []
        if loc[i] == "exchanges" and model is Settings:
            model = ExchangeSettings
            i += 2
            continue
        ann = field.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
        i += 1
    return list(model.model_fields)


def _describe(
    err: Mapping[str, Any],
    data: Mapping[str, Any],
    cfg_path: Path | None,
    secrets_path: Path | None,
) -> str:
    loc = tuple(str(p) for p in err["loc"])
    dotted = ".".join(loc)
    etype = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    env_name = _env_name(loc)
    if env_name.lower() in {k.lower() for k in os.environ}:
        source = f"env {env_name}"
    elif _lookup(data, loc)[0] or etype == "extra_forbidden":
        source = str(cfg_path) if cfg_path else "defaults"
        if secrets_path is not None and any(
            s in dotted for s in ("key", "secret", "token", "password")
        ):
            source = f"{cfg_path} or {secrets_path}"
    else:
        source = str(cfg_path) if cfg_path else "defaults"
    if any(s in loc[-1] for s in ("key", "secret", "token", "password", "url")):
        shown = "<secret>"
    else:
        shown = repr(value) if isinstance(value, str) else str(value)
    if etype == "extra_forbidden":
        choices = _fields_at(loc[:-1])
        close = difflib.get_close_matches(loc[-1], choices, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else (f"; allowed: {', '.join(choices)}" if choices else "")
        )
        return f"{dotted}: unknown key{hint} ({source})"
    if etype == "missing":
        return f"{dotted}: required value is missing ({source})"
    bounds = {
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
    }
    if etype in bounds:
        op, key = bounds[etype]
        limit = ctx.get(key)
        limit_text = f"{limit:g}" if isinstance(limit, int | float) else str(limit)
        return f"{dotted}: {value} is not {op} {limit_text} ({source})"
    if etype == "literal_error":
        return f"{dotted}: {shown} is not one of {ctx.get('expected')} ({source})"
    if etype == "value_error":
        return f"{dotted}: {err['msg'].removeprefix('Value error, ')} ({source})"
    return f"{dotted}: {shown} is invalid: {err['msg'].lower()} ({source})"


# --------------------------------------------------------------------------- showing
def iter_secrets(settings: Settings) -> Iterator[str]:
    """Every non-empty secret value (for the log redaction filter)."""

    def visit(obj: Any) -> Iterator[str]:
        if isinstance(obj, SecretStr):
            value = obj.get_secret_value()
            if value:
                yield value
        elif isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                yield from visit(getattr(obj, name))
        elif isinstance(obj, dict):
            for item in obj.values():
                yield from visit(item)

    yield from visit(settings)
    if settings.database.url:
        from sqlalchemy.engine import make_url

        try:
            password = make_url(settings.database.url).password
        except Exception:
            password = None
        if password:
            yield str(password)


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """JSON-friendly view with every secret masked (``**********``) and DB passwords hidden."""
    data = settings.model_dump(mode="json")
    if settings.database.url:
        from sqlalchemy.engine import make_url

        try:
            data["database"]["url"] = make_url(settings.database.url).render_as_string(
                hide_password=True
            )
        except Exception:
            data["database"]["url"] = "**********"
    data["database"]["effective_url"] = data["database"]["url"] or settings.database_url
    return data
