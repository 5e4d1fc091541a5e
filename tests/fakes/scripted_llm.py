"""An in-process LLM provider that answers from a script: the fake of the ``LLMProvider`` port.

Each :meth:`ScriptedLLM.complete` takes the next scripted step: a :class:`ProviderReply` to
return, or an exception to raise (e.g. an ``LLMRateLimitedError`` to exercise the retries).
When the script is empty it repeats ``default``. Every call is recorded in ``calls``. Use it for
gateway tests that do not need the HTTP protocols (those use ``tests/fakes/llm_server.py``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from morningstar.llm.types import ProviderCall, ProviderReply, Usage

__all__ = ["ScriptedLLM", "reply"]


def reply(
    text: str,
    *,
    input_tokens: int | None = 10,
    output_tokens: int | None = 5,
    finish_reason: str = "stop",
    model: str = "scripted-model",
) -> ProviderReply:
    """A provider reply with the given text and usage."""
    return ProviderReply(
        text=text,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        finish_reason=finish_reason,
        model=model,
    )


class ScriptedLLM:
    """A scripted provider (thread-safe).

    Args:
        script: replies to return or exceptions to raise, in order.
        default: what to return once the script is spent.
        name: the provider name reported to the gateway (prices are looked up by it).
        local: whether calls cost nothing.
    """

    def __init__(
        self,
        script: Iterable[ProviderReply | BaseException] = (),
        *,
        default: ProviderReply | None = None,
        name: str = "scripted",
        local: bool = False,
    ) -> None:
        self.name = name
        self.local = local
        self._script: deque[ProviderReply | BaseException] = deque(script)
        self._default = default or reply("ok")
        self._lock = threading.Lock()
        self.calls: list[ProviderCall] = []
        self.closed = False

    def complete(self, call: ProviderCall) -> ProviderReply:
        """Record the call and play the next step."""
        with self._lock:
            self.calls.append(call)
            step = self._script.popleft() if self._script else self._default
        if isinstance(step, BaseException):
            raise step
        if call.on_first_token is not None:
            call.on_first_token()
        return step

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True
