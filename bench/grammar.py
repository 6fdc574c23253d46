"""Grammar libraries side by side: compile time, per-token mask time and JSON-schema coverage.

    .venv/bin/pip install xgrammar llguidance   # both, for the comparison only
    .venv/bin/python bench/grammar.py

A byte-level BPE tokenizer with a 32k vocabulary is trained on the Python standard library's sources
(real models' vocabularies are 32k-256k; the tiny test models' 2k would flatter every library). Each
library constrains the same schemas; a valid instance is tokenized and fed token by token, timing the
mask computation before every token, as the engine does once per step per constrained row.
"""

from __future__ import annotations

import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "role": {"enum": ["admin", "user", "guest"]},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        },
    },
    "required": ["name", "age", "email", "tags", "role", "address"],
    "additionalProperties": False,
}
INSTANCE = {
    "name": "Ada Lovelace",
    "age": 36,
    "email": "ada@example.com",
    "tags": ["math", "engines", "poetry"],
    "role": "admin",
    "address": {"city": "London", "zip": "12345"},
}
# Schema features users send (OpenAI strict mode and beyond): does the library compile each one?
FEATURES: dict[str, dict[str, Any]] = {
    "anyOf": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    "oneOf": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "allOf": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]},
    "$ref recursion": {
        "$defs": {
            "node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
        },
        "$ref": "#/$defs/node",
    },
    "pattern": {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"},
    "format date-time": {"type": "string", "format": "date-time"},
    "minLength/maxLength": {"type": "string", "minLength": 2, "maxLength": 4},
    "minItems/maxItems": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    "number bounds": {"type": "number", "minimum": 0.5, "exclusiveMaximum": 10},
    "const": {"const": "fixed"},
    "nullable type list": {"type": ["string", "null"]},
    "additionalProperties schema": {"type": "object", "additionalProperties": {"type": "integer"}},
    "uniqueItems": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    "not": {"not": {"type": "string"}},
}


def train_tokenizer(vocab_size: int = 32000) -> PreTrainedTokenizerFast:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(str(p) for p in stdlib.glob("*.py"))[:400]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train(files, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_llguidance(hf: PreTrainedTokenizerFast, ids: list[int]) -> dict[str, Any]:
    import llguidance
    import llguidance.hf

    tok = llguidance.hf.from_tokenizer(hf)
    grammar = llguidance.LLMatcher.grammar_from_json_schema(SCHEMA)
    compile_s = _timed(lambda: llguidance.LLMatcher(tok, grammar))
    matcher = llguidance.LLMatcher(tok, grammar)
    times = []
    for token in ids:
        start = time.perf_counter()
        matcher.compute_bitmask()
        times.append(time.perf_counter() - start)
        assert matcher.consume_token(token), matcher.get_error()
    coverage = {}
    for name, schema in FEATURES.items():
        error = llguidance.LLMatcher.validate_grammar(llguidance.LLMatcher.grammar_from_json_schema(schema), tok)
        coverage[name] = not error or error.startswith("WARNING")
    return {"compile_ms": compile_s * 1000, "mask_us": times, "coverage": coverage}


def bench_xgrammar(hf: PreTrainedTokenizerFast, ids: list[int]) -> dict[str, Any]:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(hf, vocab_size=hf.vocab_size)
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    compile_s = _timed(lambda: compiler.compile_json_schema(json.dumps(SCHEMA)))
    matcher = xgr.GrammarMatcher(compiler.compile_json_schema(json.dumps(SCHEMA)))
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    times = []
    for token in ids:
        start = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        times.append(time.perf_counter() - start)
        assert matcher.accept_token(token)
    coverage = {}
    for name, schema in FEATURES.items():
        try:
            compiler.compile_json_schema(json.dumps(schema))
            coverage[name] = True
        except Exception:
            coverage[name] = False
    return {"compile_ms": compile_s * 1000, "mask_us": times, "coverage": coverage}


def main() -> None:
    hf = train_tokenizer()
    text = json.dumps(INSTANCE)
    ids = hf.encode(text)
    print(f"vocab {hf.vocab_size}, instance {len(ids)} tokens", file=sys.stderr)
    results = {"llguidance": bench_llguidance(hf, ids), "xgrammar": bench_xgrammar(hf, ids)}
    print("| library | compile (ms) | mask p50 (µs) | mask p99 (µs) | mask mean (µs) | schema features compiled |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        us = sorted(t * 1e6 for t in r["mask_us"])
        covered = sum(r["coverage"].values())
        print(
            f"| {name} | {r['compile_ms']:.1f} | {statistics.median(us):.0f} | {us[int(len(us) * 0.99) - 1]:.0f} "
            f"| {statistics.fmean(us):.0f} | {covered}/{len(FEATURES)} |"
        )
    for feature in FEATURES:
        marks = ", ".join(f"{name}: {'yes' if r['coverage'][feature] else 'no'}" for name, r in results.items())
        print(f"- {feature}: {marks}")


if __name__ == "__main__":
    main()
