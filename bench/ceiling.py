"""In-process ceiling: static batched ``model.generate`` on the same prompts, no server, no streaming.

python bench/ceiling.py --model-dir <snapshot> --batch 32 --requests 128 --max-tokens 64 --prompt-words 25
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import make_prompt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--requests", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="auto", help="the weights' dtype, as the servers' --dtype")
    args = p.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=args.dtype).eval()
    rng = random.Random(args.seed)
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": make_prompt(rng, args.prompt_words)}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for _ in range(args.requests)
    ]
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    encoded = [tokenizer(b, return_tensors="pt", padding=True, add_special_tokens=False) for b in batches]
    kwargs = {"do_sample": False, "max_new_tokens": args.max_tokens, "min_new_tokens": args.max_tokens}
    with torch.inference_mode():
        model.generate(**encoded[0], **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
        started = time.perf_counter()
        tokens = sum(int((model.generate(**e, **kwargs)[:, e["input_ids"].shape[1] :]).numel()) for e in encoded)
        elapsed = time.perf_counter() - started
    prompt_tokens = sum(int(e["attention_mask"].sum()) for e in encoded) / args.requests
    print(
        json.dumps(
            {
                "output_tok_s": round(tokens / elapsed, 1),
                "elapsed_s": round(elapsed, 3),
                "output_tokens": tokens,
                "mean_prompt_tokens": round(prompt_tokens, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
