"""Engines without HTTP, in one process, on the same prompts: static ``generate``, transformers' own
continuous batching (``generate_batch``, paged cache), and hfserve's ``BatchedEngine`` (the engine process's
batching loop, run here on its own thread, its deliveries counted instead of sent down a pipe).

    .venv/bin/python bench/engines.py --requests 128 --concurrency 32 --max-tokens 64 --prompt-words 25
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from transformers.generation.configuration_utils import ContinuousBatchingConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from loadgen import make_prompt  # noqa: E402
from servers import MODEL, snapshot  # noqa: E402

from app.engine.messages import Events  # noqa: E402
from app.engine.options import BatchLimits  # noqa: E402
from app.engine.process.batched_engine import BatchedEngine  # noqa: E402
from app.engine.process.model_runner import ModelRunner, pad_id  # noqa: E402
from app.engine.process.outbox import Outbox  # noqa: E402
from app.engine.process.paged_engine import PagedEngine  # noqa: E402
from app.engine.process.paged_runner import PagedRunner  # noqa: E402
from app.engine.types import FinishEvent, GenerationRequest, SamplingParams  # noqa: E402


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - started, tokens


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hf-home", type=Path, default=ROOT / ".cache" / "tiny-models")
    p.add_argument("--requests", type=int, default=128)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=25)
    args = p.parse_args()
    folder = snapshot(args.hf_home)
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    rng = random.Random(0)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": make_prompt(rng, args.prompt_words)}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        for _ in range(args.requests)
    ]
    n = args.max_tokens
    results: dict[str, float] = {}

    @torch.inference_mode()
    def static() -> int:
        total = 0
        for i in range(0, len(prompts), args.concurrency):
            batch = tokenizer.pad({"input_ids": prompts[i : i + args.concurrency]}, return_tensors="pt")
            out = model.generate(**batch, do_sample=False, max_new_tokens=n, min_new_tokens=n)
            total += out[:, batch["input_ids"].shape[1] :].numel()
        return total

    def transformers_cb() -> int:
        config = GenerationConfig(max_new_tokens=n, do_sample=False, eos_token_id=-1, pad_token_id=0)
        cb = ContinuousBatchingConfig(
            page_size=32, num_blocks=256, max_batch_tokens=512, max_requests_per_batch=args.concurrency
        )
        outputs = model.generate_batch(prompts, generation_config=config, continuous_batching_config=cb)
        return sum(len(o.generated_tokens) for o in outputs.values())

    def ours(paged: bool = False) -> int:
        finished = threading.Event()
        counts = {"tokens": 0, "requests": 0}

        def receive(message: Events) -> None:  # on the engine's thread
            for _, events in message.batch:
                for event in events:
                    if isinstance(event, FinishEvent):
                        counts["tokens"] += event.completion_tokens
                        counts["requests"] += 1
            if counts["requests"] == len(prompts):
                finished.set()

        limits = BatchLimits(max_batch_size=args.concurrency)
        outbox = Outbox(receive, 0.0)
        if paged:
            pool = PagedRunner(model, num_blocks=args.concurrency * 32)
            engine: BatchedEngine = PagedEngine(pool, tokenizer, name=MODEL, limits=limits, outbox=outbox)
        else:
            engine = BatchedEngine(
                ModelRunner(model, pad_id(tokenizer)), tokenizer, name=MODEL, limits=limits, outbox=outbox
            )
        try:
            params = SamplingParams(max_tokens=n, temperature=0.0)
            for i, prompt in enumerate(prompts):  # the batch takes args.concurrency rows at a time
                engine.submit(GenerationRequest(f"r{i}", prompt, params))
            finished.wait()
            return counts["tokens"]
        finally:
            engine.shutdown()
            if paged:
                pool.restore_attention()

    # transformers' manager runs its own thread: no inference_mode around it (its tensors must stay mutable)
    # generate_batch switches the model to its paged attention: it runs last
    runs = (
        ("static generate", static),
        ("hfserve BatchedEngine", ours),
        ("hfserve PagedEngine", lambda: ours(paged=True)),
        ("transformers generate_batch", transformers_cb),
    )
    for name, fn in runs:
        fn()  # warm-up
        elapsed, tokens = timed(fn)
        results[name] = round(tokens / elapsed, 1)
        implementation = model.config._attn_implementation
        print(f"{name}: {tokens} tokens in {elapsed:.2f}s (attention: {implementation})", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
