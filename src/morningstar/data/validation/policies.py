"""Parse and merge per-check policies (see :mod:`morningstar.data.validation`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from morningstar.data.validation.report import (
    ALLOWED_POLICIES,
    DEFAULT_POLICIES,
    Check,
    Policy,
    PolicyMap,
)
from morningstar.errors import UserInputError

__all__ = ["parse_policies", "resolve_policies"]


def _parse_check(name: str | Check) -> Check:
    try:
        return Check(str(name).strip().lower())
    except ValueError:
        names = [c.value for c in Check]
        close = difflib.get_close_matches(str(name).strip().lower(), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"checks: {', '.join(names)}"
        raise UserInputError(f"unknown validation check {name!r}", hint=hint) from None


def _parse_policy(check: Check, value: str | Policy) -> Policy:
    allowed = sorted(p.value for p in ALLOWED_POLICIES[check])
    try:
        policy = Policy(str(value).strip().lower())
    except ValueError:
        policy = None
    if policy is None or policy not in ALLOWED_POLICIES[check]:
        raise UserInputError(
            f"policy {value!r} is not available for check {check}",
            hint=f"use one of {', '.join(allowed)}",
        )
    return policy


def resolve_policies(policies: PolicyMap | None = None) -> dict[Check, Policy]:
    """Merge ``policies`` into :data:`DEFAULT_POLICIES`; the key ``"all"`` sets every check that
    accepts that policy.

    Raises:
        UserInputError: unknown check or a policy the check does not accept.
    """
    merged = dict(DEFAULT_POLICIES)
    for key, value in (policies or {}).items():
        if str(key).strip().lower() in {"all", "*"}:
            pol = Policy(str(value).strip().lower())
            for check in Check:
                if pol in ALLOWED_POLICIES[check]:
                    merged[check] = pol
    for key, value in (policies or {}).items():
        if str(key).strip().lower() in {"all", "*"}:
            continue
        check = _parse_check(key)
        merged[check] = _parse_policy(check, value)
    return merged


def parse_policies(items: Iterable[str]) -> dict[Check, Policy]:
    """Parse ``["gap=ffill", "duplicate=drop"]`` (command-line form) into a full policy mapping.

    Raises:
        UserInputError: an item is not ``check=policy`` or names an unknown check or policy.
    """
    return resolve_policies(parse_policy_items(items))


def parse_policy_items(items: Iterable[str]) -> dict[str, str]:
    """Parse ``["gap=ffill", "all=warn"]`` into a raw ``{check: policy}`` mapping, checked at once.

    Keep the raw form to merge it over other raw mappings (e.g. the config's ``data.policies``)
    before :func:`resolve_policies`.

    Raises:
        UserInputError: an item is not ``check=policy`` or names an unknown check or policy.
    """
    raw: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserInputError(
                f"bad policy {item!r}", hint="write CHECK=POLICY, e.g. gap=ffill or all=warn"
            )
        raw[key.strip()] = value.strip()
    resolve_policies(raw)
    return raw
