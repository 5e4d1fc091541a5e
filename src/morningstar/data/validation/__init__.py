"""Market-data validation: find what is wrong with bars, report it, fix only what you ask for.

:func:`validate` runs every check on a bar frame and returns the (possibly repaired) frame with a
:class:`ValidationReport`. Nothing is fixed silently: each check has a :class:`Policy` — ``error``
(raise :class:`ValidationFailedError`, a :class:`~morningstar.errors.DataValidationError`, with the
report attached), ``warn`` (keep the rows, report them), ``drop`` (remove the rows), ``ffill``
(forward-fill) or, for ordering only, ``sort`` — and the report records the policy and the action.

Checks, in the order they run (order matters: a later check sees the rows the earlier ones kept):

==================  =========  ===============================================================
check               default    what it finds / what the policies do
==================  =========  ===============================================================
non_monotonic       error      a row earlier than a row above it. ``sort``: stable sort by time;
                               ``drop``: remove the rows that go back in time.
duplicate           error      a timestamp seen more than once. ``drop`` keeps the LAST row of
                               each group (an exchange's final version of a bar).
misaligned          warn       a bar off the timeframe grid (grid = the most common phase).
nan                 error      NaN/inf in a price or the volume.
non_positive        error      a price <= 0 or a negative volume.
ohlc_inconsistent   error      high/low not bounding open/close (or high < low).
outlier             warn       an isolated price spike far from the neighbouring closes (below).
zero_volume         warn       bars with volume 0 in a series that otherwise has volume.
no_volume           warn       the whole series has volume 0 (reported once, as info).
off_session         warn       a bar when the calendar's market is closed.
gap                 warn       missing bars the calendar expected (weekends, nights, holidays are
                               not gaps). ``ffill`` inserts bars at the previous close, volume 0.
==================  =========  ===============================================================

The value checks (nan .. outlier) are all judged on the same rows, so one bar may be reported by
several of them; then ``drop`` wins over ``ffill``. ``ffill`` on a value check replaces the bar by
a flat bar at the previous good close (a NaN-only volume becomes 0; a bad first bar, having no
previous bar, is dropped). Gaps are measured after the drops, so a dropped bar shows up as a gap.

Outlier rule (vectorised, robust): for each bar and each of open/high/low/close, compare the price
with the median of the 3 closes before and the median of the 3 closes after (one side at the edges).
The deviation counts only if the price is beyond BOTH medians on the same side (a spike that
reverts; a crash that stays down does not qualify) and is the smaller of the two log distances.
A bar is flagged when that deviation is at least 12 local sigmas (1.4826 x the median absolute
1-bar log return around the bar) and at least 3 %, unless the bar trades at least 2x its local
median volume (a real market event) and the deviation is under 50 %. See :class:`OutlierRule`.

Row numbers in the report are 1-based positions among the input rows (the data row of a CSV file,
header excluded), so they point into the source file.

Modules: :mod:`.report` (checks, policies, the report and its error), :mod:`.policies` (parsing
and merging policies), :mod:`.outliers` (the outlier rule), :mod:`.checks` (the other value
checks) and :mod:`.engine` (the run that applies them: :func:`validate`).
"""

from __future__ import annotations

from morningstar.data.validation.engine import validate
from morningstar.data.validation.outliers import OutlierRule
from morningstar.data.validation.policies import (
    parse_policies,
    parse_policy_items,
    resolve_policies,
)
from morningstar.data.validation.report import (
    ALLOWED_POLICIES,
    DEFAULT_POLICIES,
    Check,
    Example,
    Issue,
    Policy,
    PolicyMap,
    Severity,
    ValidationFailedError,
    ValidationReport,
)

__all__ = [
    "ALLOWED_POLICIES",
    "DEFAULT_POLICIES",
    "Check",
    "Example",
    "Issue",
    "OutlierRule",
    "Policy",
    "PolicyMap",
    "Severity",
    "ValidationFailedError",
    "ValidationReport",
    "parse_policies",
    "parse_policy_items",
    "resolve_policies",
    "validate",
]
