"""Whether this CPU multiplies in the model's dtype slower than in float32, measured once at load.

Most checkpoints are bfloat16, and ``--dtype auto`` keeps it. On CPU which of bfloat16 and float32 is faster depends
on the chip in ways its flags do not tell: a 2-vCPU AMD EPYC (AVX512-BF16) ran bfloat16 products three times
faster than float32, a 2-vCPU Intel Xeon VM that also reports AVX512-BF16 (but exposes no AMX) at half the float32
rate (bench/README.md). So a model loaded on CPU in another dtype than float32 times one prefill-shaped product in
both (45-70 ms here), and the engine says so when its dtype is the slower one: ``--dtype float32`` is then worth trying,
at twice the weights' memory. Nothing is changed on its own: that memory may not be there.
"""

from __future__ import annotations

import time

import structlog
import torch
import torch.nn.functional as F

log = structlog.get_logger(__name__)

PROBE = (256, 1024, 1024)  # rows x inputs x outputs: a prefill chunk through a mid-sized layer, ~0.5 GFLOP
SLOW = 0.8  # a dtype below this share of float32's rate is reported


def product_rate(dtype: torch.dtype, repeats: int = 3) -> float:
    """GFLOP/s of one ``PROBE``-shaped product in ``dtype`` on this CPU with the current threads (best of
    ``repeats``, after one warm-up)."""
    rows, inputs, outputs = PROBE
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, inputs, generator=generator).to(dtype)
    weight = torch.randn(outputs, inputs, generator=generator).to(dtype)
    F.linear(x, weight)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        F.linear(x, weight)
        best = min(best, time.perf_counter() - started)
    return 2 * rows * inputs * outputs / max(best, 1e-9) / 1e9


def advise(dtype: torch.dtype) -> None:
    """Log both rates for a model loaded on CPU in ``dtype``; a warning when float32 is clearly faster."""
    if dtype == torch.float32 or not dtype.is_floating_point:
        return
    rate, reference = product_rate(dtype), product_rate(torch.float32)
    name = str(dtype).removeprefix("torch.")
    log.info("cpu_dtype_rates", dtype=name, gflops=round(rate, 1), float32_gflops=round(reference, 1))
    if rate < SLOW * reference:
        log.warning(
            "cpu_dtype_slow",
            dtype=name,
            gflops=round(rate, 1),
            float32_gflops=round(reference, 1),
            hint="this CPU multiplies faster in float32: --dtype float32 may serve faster, with twice the memory",
        )
