"""The torch threads of CPU steps: one core left to the HTTP side while decoding, every core for a wide prefill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from app.engine.process import cpu_threads as module
from app.engine.process.cpu_threads import WIDE_STEP_FLOPS, _Threads


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Threads]:
    monkeypatch.setattr(module.os, "cpu_count", lambda: 4)
    before = torch.get_num_threads()
    try:
        yield _Threads()
    finally:
        torch.set_num_threads(before)


def test_decode_steps_leave_a_core_and_wide_prefills_take_them_all(threads: _Threads) -> None:
    threads.configure(None, ranks=1)
    threads.step(prefill_tokens=10**6)  # the model's size is not known yet: narrow
    assert torch.get_num_threads() == 3
    threads.sized(10**7)
    wide = int(WIDE_STEP_FLOPS / 2e7)  # two flops per parameter per token
    assert torch.get_num_threads() == 3
    threads.step(prefill_tokens=wide)
    assert torch.get_num_threads() == 4
    threads.step(prefill_tokens=wide - 1)
    assert torch.get_num_threads() == 3
    threads.step(prefill_tokens=0)  # decode only
    assert torch.get_num_threads() == 3


def test_a_tiny_models_prefill_stays_narrow(threads: _Threads) -> None:
    threads.configure(None, ranks=1)
    threads.sized(200_000)
    threads.step(prefill_tokens=4096)
    assert torch.get_num_threads() == 3


def test_tensor_parallel_ranks_share_the_cores(threads: _Threads) -> None:
    threads.configure(None, ranks=2)
    threads.sized(10**9 // 2)
    assert torch.get_num_threads() == 1
    threads.step(prefill_tokens=1000)
    assert torch.get_num_threads() == 2


def test_cpu_threads_fixes_the_count(threads: _Threads) -> None:
    threads.configure(2, ranks=1)
    threads.sized(10**9)
    for tokens in (0, 1000):
        threads.step(prefill_tokens=tokens)
        assert torch.get_num_threads() == 2


def test_nothing_is_set_off_cpu(threads: _Threads) -> None:
    torch.set_num_threads(3)
    threads.step(prefill_tokens=1000)  # never configured: the model is on a GPU
    assert torch.get_num_threads() == 3
