"""Content capture and redaction of what the LLM monitor stores, exports and shows.

Everything the monitor keeps of a call's text (the 200-character prompt excerpt, the captured
prompt and response, the error message) goes through :func:`redact_text` first:

* the redaction of :func:`morningstar.logs.redact`: registered secrets (every ``SecretStr`` of the
  settings), ``key=value`` / ``"key": "value"`` pairs with secret-looking names, bearer/basic
  tokens, ``sk-...`` keys and URL passwords;
* account numbers: IBANs (two upper-case letters, two check digits, 11 to 30 letters/digits,
  optionally grouped by single spaces), card numbers (runs of 13 to 19 digits, optionally grouped
  by single spaces or dashes, starting with 2-9 and passing the Luhn check: real card numbers
  always do, epoch timestamps (which start with 1 until 2033) never match, and only one in ten
  other long integers would), and labelled account numbers: ``account`` or ``acct``, optionally
  with ``id`` / ``number`` / ``no`` (``account_id``, ``account number``, ``acct no.``), then
  either an explicit ``:``, ``=`` or ``#`` (``acct: X``, ``Account #: X``, ``account id=X``:
  any value is masked) or only spaces / dots (``account number 12345678``, ``account no.
  12345678``: masked only when the value holds at least 4 digits, so prose such as "take into
  account the trend" or "an account of 3 trades" is kept).

Decimal numbers (prices such as ``43125.57``), ISO timestamps and short integers are kept.

Capture modes (``llm.capture``): ``off`` stores no prompt or response, ``truncated`` the first
:data:`TRUNCATE_CHARS` characters of the redacted text, ``full`` all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from morningstar.logs import MASK, redact

__all__ = [
    "EXCERPT_CHARS",
    "TRUNCATE_CHARS",
    "CaptureMode",
    "capture_text",
    "error_message",
    "excerpt",
    "redact_text",
]

CaptureMode = Literal["off", "truncated", "full"]
#: Length of the prompt excerpt shown for calls in flight and in records.
EXCERPT_CHARS = 200
#: Length kept by the ``truncated`` capture mode.
TRUNCATE_CHARS = 2_000
#: Characters redacted beyond a cut, so a secret straddling the cut is still recognised whole.
_REDACT_MARGIN = 256
#: Longest error message kept (after redaction).
_ERROR_CHARS = 1_000

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)\b")
_CARD = re.compile(r"(?<![\w.,])[2-9]\d*(?:[ -]\d+)*(?![\w]|[.,]\d)")
# Pre-checks by byte translation (C speed, far cheaper than a regex scan of a long prompt):
# digits become "0", A-Z become "A", everything else "|" (spaces and dashes are dropped for the
# card check, which may join two numbers: a false alarm only runs the exact pattern).
_CLASSES = bytes(48 if 48 <= i <= 57 else 65 if 65 <= i <= 90 else 124 for i in range(256))


def _may_hold_card(text: str) -> bool:
    return b"0" * 13 in text.encode("utf-8", "replace").translate(_CLASSES, b" -")


def _may_hold_iban(text: str) -> bool:
    return b"AA00" in text.encode("utf-8", "replace").translate(_CLASSES)


_ACCOUNT = re.compile(
    r"""(?ix)
    (                                                   # 1: kept: the label and the separator
      ["']?\b(?:account|acct)(?:[ _-]?(?:id|number|no)\b\.?)?["']?
      (?:
          \s*[:=\#][\s:=\#]*["']?                         # explicit: any value
        | [\s.]+(?=[^\s"',;}&]*?\d(?:[^\s"',;}&]*?\d){3})  # spaces/dots: 4+ digits in the value
      )
    )
    [^\s"',;}&]+                                        # the value, masked
    """
)


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_ok(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


def _mask_prefix(text: str, separators: str, valid: Callable[[str], bool]) -> str:
    """Mask the longest prefix of ``text`` ending at a group boundary that ``valid`` accepts."""
    cuts = [i for i, ch in enumerate(text) if ch in separators] + [len(text)]
    for cut in reversed(cuts):
        if valid(text[:cut]):
            return MASK + text[cut:]
    return text


def _mask_iban(match: re.Match[str]) -> str:
    return _mask_prefix(match.group(0), " ", _iban_ok)


def _mask_card(match: re.Match[str]) -> str:
    return _mask_prefix(match.group(0), " -", _card_ok)


def redact_text(text: str) -> str:
    """Mask secrets and account numbers in ``text`` (see the module docstring).

    Args:
        text: any text about to be stored, exported or shown.

    Returns:
        The text with every match replaced by ``***``.
    """
    text = redact(text)
    # cheap C-level pre-checks: the masking patterns (with their Python callbacks) run only
    # when the text holds a candidate at all
    if _may_hold_iban(text):
        text = _IBAN.sub(_mask_iban, text)
    if _may_hold_card(text):
        text = _CARD.sub(_mask_card, text)
    if "acc" not in text.lower():  # the pattern cannot match (keeps long texts cheap)
        return text
    return _ACCOUNT.sub(rf"\1{MASK}", text)


def _redact_head(text: str, keep: int) -> str:
    """Redact enough of ``text`` to cut it at ``keep`` characters safely, then cut it."""
    head = text[: keep + _REDACT_MARGIN]
    return redact_text(head)[:keep]


def excerpt(prompt: str) -> str:
    """Return the first :data:`EXCERPT_CHARS` characters of ``prompt``, redacted."""
    return _redact_head(prompt, EXCERPT_CHARS)


def capture_text(text: str | None, mode: CaptureMode) -> str | None:
    """Return what the capture ``mode`` keeps of ``text``, redacted.

    Args:
        text: a prompt or a response; None stays None.
        mode: ``off`` (None), ``truncated`` (first :data:`TRUNCATE_CHARS` characters) or
            ``full``.
    """
    if text is None or mode == "off":
        return None
    if mode == "truncated":
        return _redact_head(text, TRUNCATE_CHARS)
    return redact_text(text)


def error_message(error: BaseException) -> str:
    """Return the exception's message as one redacted line (at most 1,000 characters).

    :class:`~morningstar.errors.MorningstarError` messages are already one line; for others the
    first non-empty line of ``str(error)`` is kept, or the class name when it is empty.
    """
    text = str(error).strip()
    line = next((ln for ln in text.splitlines() if ln.strip()), "") if text else ""
    line = " ".join(line.split()) or type(error).__name__
    return _redact_head(line, _ERROR_CHARS)
