"""On CPU, how many prompt tokens one step prefills: as many as fit in about ``--cpu-prefill-ms`` of work, at the
cost per token this engine measured on its own earlier steps, and never more than ``--max-num-batched-tokens``.

A CPU step's time grows with every token in it (a GPU's barely does until it is compute-bound). One step that
prefills a whole burst of newcomers gives each of them its first token only when the whole burst is done, and
stalls the running streams as long. Steps of a set length instead give the newcomers their first tokens in
arrival order, one step apart, while the running streams take a token every step.
"""

from __future__ import annotations

MEASURED_FROM = 64  # prompt tokens a step prefills before its time says what a token costs
# A step always has room for this many prompt tokens. Fewer would not save a large model any time: its step is
# bound by reading all of its weights, so it would prefill a handful of tokens per read (and so much slower).
SMALLEST = 128
_WEIGHT = 0.2  # of each new measurement in the running average


class PrefillBudget:
    def __init__(self, limit: int, step_seconds: float) -> None:
        """``limit``: tokens per step in all (decode rows count one each); ``step_seconds``: 0 turns the measured
        cut off (on GPUs, where a step's time does not follow its tokens)."""
        self._limit, self._target = limit, step_seconds
        self.seconds_per_token: float | None = None  # measured; None until a step prefilled enough to tell

    def tokens(self, decodes: int) -> int:
        """Prompt tokens the next step may prefill beside ``decodes`` decode rows."""
        budget = self._limit - decodes
        if self._target > 0 and self.seconds_per_token:
            budget = min(budget, max(SMALLEST, int(self._target / self.seconds_per_token) - decodes))
        return budget

    def observe(self, prefill_tokens: int, decodes: int, seconds: float) -> None:
        """A step's forward pass took ``seconds`` for ``prefill_tokens`` prompt tokens and ``decodes`` rows."""
        if self._target <= 0 or prefill_tokens < MEASURED_FROM:
            return
        cost = seconds / (prefill_tokens + decodes)
        old = self.seconds_per_token
        self.seconds_per_token = cost if old is None else (1 - _WEIGHT) * old + _WEIGHT * cost
