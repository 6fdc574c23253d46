"""Loading the weights (the engine process's half of a load), here in the test process."""

from __future__ import annotations

from pathlib import Path

import torch

from app.engine.options import LoadOptions
from app.engine.process.weights import load_weights
from tests.support.models import CHAT_MODEL_ID, snapshot_path


def test_weights_load_with_progress_and_describe_the_model(hf_home: Path) -> None:
    events: list[tuple[str, int | None, int | None]] = []
    folder = str(snapshot_path(hf_home, CHAT_MODEL_ID))
    options = LoadOptions(device="cpu", max_model_len=100, cpu_threads=1)
    threads = torch.get_num_threads()
    try:
        model, tokenizer, info = load_weights(folder, "tiny-chat", options, lambda *e: events.append(e))
        assert torch.get_num_threads() == 1  # on CPU: --cpu-threads
    finally:
        torch.set_num_threads(threads)
    assert {stage for stage, _, _ in events} == {"weights"}
    assert events[-1][1] == events[-1][2]
    assert not model.training and str(model.device) == "cpu"
    assert info.name == "tiny-chat" and info.task == "text-generation"
    assert info.max_context == 100
    assert info.vocab_size == model.get_output_embeddings().weight.shape[0]
    assert info.eos_token_ids == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
