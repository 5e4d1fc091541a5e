"""Pin the public surface: a change to a package's ``__all__`` must be deliberate.

(The ``morningstar.store`` surface is pinned in ``test_store_api.py``.)"""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "morningstar": ["__version__"],
    "morningstar.core": ["OHLCV_COLUMNS", "Pair", "Timeframe", "parse_pair", "parse_timeframe"],
    "morningstar.core.engine": [
        "EXIT_REASONS", "PORTFOLIO_TRADE_DTYPE", "TRADE_DTYPE", "Costs", "EngineFrames",
        "EngineInputError", "EngineOptions", "EngineResult", "ExitReason", "FillTiming",
        "FractionSizing", "IntrabarPolicy", "NotionalSizing", "OrderLimits",
        "PortfolioEngineResult", "PortfolioFrames", "Sizing", "Stops", "VolTargetSizing",
        "simulate", "simulate_portfolio", "to_pandas",
    ],
    "morningstar.core.indicators": [
        "MACD", "BollingerBands", "DonchianChannel", "adx", "atr", "bollinger", "donchian", "ema",
        "macd", "minus_di", "plus_di", "rolling_std", "rolling_volatility", "rsi", "sma",
        "true_range", "zscore",
    ],
    "morningstar.research": [
        "CVFold", "CVResult", "PortfolioResult", "Result", "SweepResult", "WalkForwardFold",
        "WalkForwardResult", "backtest", "backtest_portfolio", "parameter_grid", "purged_cv",
        "resolve_strategy", "sweep", "walk_forward",
    ],
    "morningstar.strategies": [
        "BUILTIN_STRATEGIES", "Bars", "Param", "ParamValue", "Signals", "Strategy",
        "available_strategies", "cross_above", "cross_below", "crossings", "load_strategy",
        "resolve_strategy",
    ],
    "morningstar.data": [
        "INDEX_NAME", "OHLCV_COLUMNS", "DatasetInfo", "ImportedCSV", "OHLCVStore", "ResampleResult",
        "WriteResult", "empty_ohlcv", "from_arrays", "read_ohlcv_csv", "resample_ohlcv",
        "to_contract",
    ],
    "morningstar.data.validation": [
        "ALLOWED_POLICIES", "Check", "DEFAULT_POLICIES", "Example", "Issue", "OutlierRule", "Policy",
        "PolicyMap", "Severity", "ValidationFailedError", "ValidationReport", "parse_policies",
        "parse_policy_items", "resolve_policies", "validate",
    ],
    "morningstar.exchange": [
        "Broker", "OrderAck", "PaperBroker", "SimulatedBroker",
        "EXCHANGE_DEFAULT_OPTIONS", "api_base", "make_exchange", "retry_after_s",
        "translate_ccxt_error",
    ],
    "morningstar.errors": [
        "AuthenticationError", "BadSymbolError", "BusinessRejection", "ConfigError",
        "DataFormatError", "DataNotFoundError", "DataValidationError", "ExchangeError",
        "ExchangeUnavailableError", "LLMBudgetExceeded", "LLMCacheMiss", "LLMError",
        "LLMInvalidOutput", "LLMProviderError", "LLMRateLimitedError", "LLMTimeoutError",
        "LLMTransportError", "MorningstarError", "NetworkError",
        "RateLimitedError", "StorageError", "StrategyError", "TemporaryError", "UserInputError",
    ],
    "morningstar.llm": [
        "Gateway", "LLMProvider", "LLMRequest", "LLMResult", "MarketAssessment", "Message",
        "OutputMode", "PromptTemplate", "ProviderCall", "ProviderReply", "Usage",
        "get_active_requests", "get_monitor_status", "list_templates", "load_template",
        "query_ollama_monitored",
    ],
    "morningstar.llm.providers": [
        "DEFAULT_OLLAMA_URL", "OfflineProvider", "OllamaProvider", "OpenAICompatProvider",
        "make_provider",
    ],
    "morningstar.llm.monitor": [
        "ActiveCall", "CallRecord", "CallTrace", "LLMMonitor", "StallAlert", "capture_text",
        "excerpt", "query_history", "redact_text", "span_attributes",
    ],
    "morningstar.api": ["BackgroundServer", "create_app", "serve"],
    "morningstar.llm.prompts": [
        "FLOAT_DIGITS", "INPUT_TYPES", "InputSpec", "PromptTemplate", "format_value",
        "list_templates", "load_template", "load_template_file", "parse_template",
    ],
    "morningstar.config": [
        "ApiSettings", "DashboardSettings", "DataSettings", "DatabaseSettings", "ExchangeSettings",
        "HeadsSpec", "DecisionSettings", "ErrorPolicies", "LLMBudget", "LLMSettings", "LoggingSettings",
        "LossWeights", "ModelSettings", "SizingSettings", "SupervisorSettings", "WorkflowSettings",
        "NetworkSpec", "RiskSettings", "ScaleSettings", "Settings", "TrainSpec",
        "default_config_path", "iter_secrets", "load_settings", "settings_as_dict",
    ],
    "morningstar.model": [
        "FeatureSpec", "LabelSpec", "ModelPredictor", "MorningstarModel",
        "StrategySignalPredictor", "TrainResult", "make_labels", "prepare_inputs", "train_model",
    ],
    "morningstar.core.prediction": [
        "SIGNAL_NAMES", "SIGNAL_VALUES", "Prediction", "PredictionBatch", "Predictor",
        "signal_name",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exported_members(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPORTS[module])
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists {name} but it is not defined"


def test_every_error_derives_from_the_root() -> None:
    errors = importlib.import_module("morningstar.errors")
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.MorningstarError)
