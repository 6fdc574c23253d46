"""The benchmark's ~30M-parameter model, built offline: a random Qwen3 (hidden 512, 8 layers, 8 heads, 2 KV heads,
head dim 64) with the tiny never-EOS model's tokenizer and the same trick, so every request runs to ``max_tokens``.

    .venv/bin/python bench/models.py --hf-home .cache/tiny-models
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.demo.training import init_weights, seeded  # noqa: E402
from tests.fixtures.tiny_models import (  # noqa: E402
    NEVER_EOS_MODEL_ID,
    ensure_tiny_models,
    install_in_hf_cache,
    never_eos_weights,
)

BENCH_MODEL_ID = "hfserve/bench-qwen3-30m"
SHAPE = {
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 8192,
}


def _snapshot(hf_home: Path, repo_id: str) -> Path:
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    return repo / "snapshots" / (repo / "refs" / "main").read_text().strip()


def build(hf_home: Path) -> str:
    """Install the model into ``hf_home``'s hub cache (once; later calls find it); returns its repo id."""
    if (hf_home / "hub" / ("models--" + BENCH_MODEL_ID.replace("/", "--")) / "refs" / "main").exists():
        return BENCH_MODEL_ID
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    ensure_tiny_models(hf_home, which=[NEVER_EOS_MODEL_ID])
    source = _snapshot(hf_home, NEVER_EOS_MODEL_ID)
    tokenizer = AutoTokenizer.from_pretrained(source)
    vocab = -(-len(tokenizer) // 64) * 64
    config = Qwen3Config(
        vocab_size=vocab,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SHAPE,
    )
    with seeded(0) as gen:
        model = Qwen3ForCausalLM(config)
        init_weights(model, gen)
        never_eos_weights(model, tokenizer, vocab, gen)  # the never-EOS construction of the tiny test model
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        for extra in ("chat_template.jinja",):
            if (source / extra).exists():
                shutil.copy(source / extra, Path(folder) / extra)
        install_in_hf_cache(Path(folder), hf_home, BENCH_MODEL_ID)
    print(f"{BENCH_MODEL_ID}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", file=sys.stderr)
    return BENCH_MODEL_ID


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf-home", type=Path, default=ROOT / ".cache" / "tiny-models")
    build(p.parse_args().hf_home)
