"""How many torch threads a step on CPU gets.

On CPU the engine shares the machine with the HTTP event loop, which streams every decoded token out. A decode
step is short and bound by reading the weights; while it runs, the event loop is busy streaming the previous
step's tokens, so the engine keeps one core free for it (a torch pool as wide as the machine made them fight:
bench/README.md). A step that prefills many tokens is long and bound by arithmetic, and the event loop has little
to do meanwhile (no row gets a token until it ends), so it gets every core; "many" is by the model's size (a tiny
model's prefill is over before a second thread pays off). ``--cpu-threads`` fixes the count.
"""

from __future__ import annotations

import math
import os

import torch

WIDE_STEP_FLOPS = 2e9  # a prefill of this much arithmetic (~20 ms of one core) runs on every core


class _Threads:
    def __init__(self) -> None:
        self.narrow = self.wide = 0  # 0: not on CPU (nothing to set)
        self.wide_tokens = 0  # prompt tokens that make a step wide (0: the model's size is not known yet)

    def configure(self, requested: int | None, ranks: int) -> None:
        """This process runs on CPU (set before the weights load, which then keeps to its share too):
        ``requested`` threads always, or (default) all cores but one, and every core for a wide step. The ranks
        of a tensor-parallel model share the cores."""
        cores = os.cpu_count() or 2
        self.narrow = requested or max(1, (cores - 1) // ranks)
        self.wide = requested or max(1, cores // ranks)
        self.wide_tokens = 0
        self._set(self.narrow)

    def sized(self, parameters: int) -> None:
        """The model loaded has ``parameters`` (this rank's share): what makes its steps wide."""
        self.wide_tokens = max(1, math.ceil(WIDE_STEP_FLOPS / (2 * max(1, parameters))))

    def step(self, *, prefill_tokens: int) -> None:
        """A step that prefills ``prefill_tokens`` prompt tokens (beside any decode tokens) is about to run."""
        if self.narrow:
            wide = self.wide_tokens and prefill_tokens >= self.wide_tokens
            self._set(self.wide if wide else self.narrow)

    @staticmethod
    def _set(count: int) -> None:
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)


cpu_threads = _Threads()
