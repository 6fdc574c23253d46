"""lm-evaluation-harness against a real server: its ``local-completions`` model runs a tiny multiple-choice task
(a YAML and a JSON data file written here), fully offline. Each choice's loglikelihood comes from the server's
prompt logprobs (``echo`` with ``logprobs``); the scores and the accuracy must equal what the model's own forward
pass gives in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.fixtures.tiny_models import NEVER_EOS_MODEL_ID
from tests.support.models import load_model_and_tokenizer, snapshot_path
from tests.support.server import ROOT, ServerProcess

TASK = "hfserve_tiny_capitals"
DOCS = [
    {"question": "The capital of France is", "choices": ["Paris", "Rome", "Berlin"], "answer": 0},
    {"question": "The capital of Italy is", "choices": ["Madrid", "Rome", "Paris"], "answer": 1},
    {"question": "Two plus two equals", "choices": ["three", "five", "four"], "answer": 2},
    {"question": "The sky on a clear day is", "choices": ["blue", "green"], "answer": 0},
]


def write_task(folder: Path) -> None:
    data = folder / "capitals.jsonl"
    data.write_text("".join(json.dumps(doc) + "\n" for doc in DOCS))
    (folder / f"{TASK}.yaml").write_text(
        f"task: {TASK}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        f"  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n"
    )


def run_lm_eval(server: ServerProcess, tokenizer_path: Path, tmp_path: Path) -> tuple[dict[str, Any], list[dict]]:
    """The harness's own command line; returns its results and its logged samples."""
    tasks, out = tmp_path / "tasks", tmp_path / "out"
    tasks.mkdir()
    write_task(tasks)
    model_args = ",".join(
        [
            f"model={NEVER_EOS_MODEL_ID}",
            f"base_url={server.base_url}/completions",
            "tokenizer_backend=huggingface",
            f"tokenizer={tokenizer_path}",
            "num_concurrent=2",
            "max_retries=1",
        ]
    )
    env = {
        **os.environ,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "OPENAI_API_KEY": "unused",
    }
    command = [sys.executable, "-m", "lm_eval", "run", "--model", "local-completions", "--model_args", model_args]
    command += ["--tasks", TASK, "--include_path", str(tasks), "--output_path", str(out), "--log_samples"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples = [json.loads(line) for line in next(out.rglob(f"samples_{TASK}_*.jsonl")).read_text().splitlines()]
    return results, samples


def own_loglikelihood(model: Any, tokenizer: Any, context: str, continuation: str) -> tuple[float, bool]:
    """The continuation's log-probability after the context from one forward pass here, split into tokens as
    the harness splits them (the context's trailing spaces move to the continuation; no special tokens)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    start = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.inference_mode():
        logprobs = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), dim=-1)
    positions = range(start, len(whole))
    total = sum(float(logprobs[i - 1, whole[i]]) for i in positions)
    greedy = all(int(logprobs[i - 1].argmax()) == whole[i] for i in positions)
    return total, greedy


@pytest.mark.timeout(900)
def test_local_completions_multiple_choice_matches_the_model(
    server: ServerProcess, hf_home: Path, tmp_path: Path
) -> None:
    model, tokenizer = load_model_and_tokenizer(hf_home, NEVER_EOS_MODEL_ID)
    results, samples = run_lm_eval(server, snapshot_path(hf_home, NEVER_EOS_MODEL_ID), tmp_path)
    assert len(samples) == len(DOCS)
    correct = 0
    for sample in sorted(samples, key=lambda s: s["doc_id"]):
        doc = DOCS[sample["doc_id"]]
        served = [resp[0] for resp in sample["resps"]]  # per choice: [loglikelihood, is_greedy], logged as text
        expected = [own_loglikelihood(model, tokenizer, doc["question"], " " + choice) for choice in doc["choices"]]
        assert [float(s[0]) for s in served] == pytest.approx([e[0] for e in expected], abs=1e-3)
        assert [str(s[1]) == "True" for s in served] == [e[1] for e in expected]
        correct += max(range(len(expected)), key=lambda i: expected[i][0]) == doc["answer"]
    assert results["results"][TASK]["acc,none"] == pytest.approx(correct / len(DOCS))
