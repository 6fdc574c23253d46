"""The load-time check of whether this CPU multiplies in the model's dtype slower than in float32."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from structlog.testing import capture_logs

from app.engine.options import LoadOptions
from app.engine.process import cpu_dtype
from app.engine.process.weights import load_weights
from tests.support.models import CHAT_MODEL_ID, snapshot_path


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_product_rate_is_measured(dtype: torch.dtype) -> None:
    rate = cpu_dtype.product_rate(dtype, repeats=1)
    assert math.isfinite(rate) and rate > 0


def _rates(monkeypatch: pytest.MonkeyPatch, rates: dict[torch.dtype, float]) -> list[torch.dtype]:
    """This machine's real rates cannot be chosen, so the test sets them; returns the dtypes measured."""
    measured: list[torch.dtype] = []

    def rate(dtype: torch.dtype, repeats: int = 3) -> float:
        measured.append(dtype)
        return rates[dtype]

    monkeypatch.setattr(cpu_dtype, "product_rate", rate)
    return measured


def test_a_slower_dtype_is_reported_with_both_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    _rates(monkeypatch, {torch.bfloat16: 84.0, torch.float32: 150.0})
    with capture_logs() as logs:
        cpu_dtype.advise(torch.bfloat16)
    warning = next(entry for entry in logs if entry["event"] == "cpu_dtype_slow")
    assert warning["log_level"] == "warning"
    assert (warning["dtype"], warning["gflops"], warning["float32_gflops"]) == ("bfloat16", 84.0, 150.0)
    assert "--dtype float32" in warning["hint"]


@pytest.mark.parametrize("share", [0.8, 1.0, 3.0])
def test_a_dtype_as_fast_as_float32_is_not_reported(monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    _rates(monkeypatch, {torch.bfloat16: 100.0 * share, torch.float32: 100.0})
    with capture_logs() as logs:
        cpu_dtype.advise(torch.bfloat16)
    assert [entry["event"] for entry in logs] == ["cpu_dtype_rates"]


def test_float32_models_measure_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    measured = _rates(monkeypatch, {})
    with capture_logs() as logs:
        cpu_dtype.advise(torch.float32)
    assert measured == [] and logs == []


def test_a_bfloat16_load_on_cpu_reports_the_rates(hf_home: Path) -> None:
    folder = str(snapshot_path(hf_home, CHAT_MODEL_ID))
    options = LoadOptions(device="cpu", dtype="bfloat16", max_model_len=100, cpu_threads=1)
    threads = torch.get_num_threads()
    try:
        with capture_logs() as logs:
            model, _, _ = load_weights(folder, "tiny-chat", options, lambda *e: None)
    finally:
        torch.set_num_threads(threads)
    assert model.dtype == torch.bfloat16
    rates = next(entry for entry in logs if entry["event"] == "cpu_dtype_rates")
    assert rates["dtype"] == "bfloat16" and rates["gflops"] > 0 and rates["float32_gflops"] > 0
