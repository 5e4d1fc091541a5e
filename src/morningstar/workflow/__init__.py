"""The trading workflow: backtest and paper modes on one code path (steps a–g of a cycle).

See ``docs/workflow.md``.
"""
