"""The tiny tool-calling models as transformers sees them: each family's tokens, config and template,
and greedy ``generate`` reproducing every canned chat up to its stop token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from app.testing.tokenizer import render_chat
from app.testing.tool_models import (
    GEMMA4_MODEL_ID,
    GEMMA4_STOPS,
    LLAMA3_MODEL_ID,
    LLAMA3_STOPS,
    MISTRAL_MODEL_ID,
    QWEN3_CODER_MODEL_ID,
    RECIPES,
    TOOL_MODEL_IDS,
)
from tests.support.models import load_model_and_tokenizer

# model_type, architecture, eos, pad, bos, markers that must be special tokens
FAMILY = {
    QWEN3_CODER_MODEL_ID: ("qwen3", "Qwen3ForCausalLM", "<|im_end|>", "<|endoftext|>", None, ()),
    LLAMA3_MODEL_ID: (
        "llama",
        "LlamaForCausalLM",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
        "<|begin_of_text|>",
        ("<|python_tag|>",),
    ),
    MISTRAL_MODEL_ID: ("mistral", "MistralForCausalLM", "</s>", None, "<s>", ("[TOOL_CALLS]", "[TOOL_RESULTS]")),
    GEMMA4_MODEL_ID: (
        "gemma4_text",
        "Gemma4ForCausalLM",
        "<eos>",
        "<pad>",
        "<bos>",
        ("<|tool_call>", '<|"|>', "<|channel>"),
    ),
}
GENERATION_STOPS = {LLAMA3_MODEL_ID: LLAMA3_STOPS, GEMMA4_MODEL_ID: GEMMA4_STOPS}


@pytest.fixture(scope="module", params=TOOL_MODEL_IDS)
def loaded(request: pytest.FixtureRequest, tool_hf_home: Path) -> tuple[str, Any, Any]:
    model, tok = load_model_and_tokenizer(tool_hf_home, request.param)
    return request.param, model, tok


def test_family_tokens_and_config(loaded: tuple[str, Any, Any]) -> None:
    repo_id, model, tok = loaded
    model_type, architecture, eos, pad, bos, special = FAMILY[repo_id]
    assert (model.config.model_type, model.config.architectures) == (model_type, [architecture])
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == (eos, pad, bos)
    assert set(special) <= set(tok.all_special_tokens)
    stops = tok.convert_tokens_to_ids(list(GENERATION_STOPS.get(repo_id, (eos,))))
    configured = model.generation_config.eos_token_id
    assert sorted([configured] if isinstance(configured, int) else configured) == sorted(stops)


def test_corpus_rendering_matches_the_tokenizers_template(loaded: tuple[str, Any, Any]) -> None:
    repo_id, _, tok = loaded
    spec = RECIPES[repo_id].spec
    for chat in spec.chats:
        expected = tok.apply_chat_template(
            chat["messages"],
            tools=chat["tools"],
            add_generation_prompt=True,
            tokenize=False,
            **chat["chat_template_kwargs"],
        )
        assert render_chat(spec, chat) == expected, chat["name"]


def test_greedy_generate_reproduces_every_canned_chat(loaded: tuple[str, Any, Any]) -> None:
    repo_id, model, tok = loaded
    for chat in RECIPES[repo_id].spec.chats:
        text = tok.apply_chat_template(
            chat["messages"],
            tools=chat["tools"],
            add_generation_prompt=True,
            tokenize=False,
            **chat["chat_template_kwargs"],
        )
        ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=96, do_sample=False)
        generated = out[0, ids.shape[1] :].tolist()
        assert generated[-1] == tok.convert_tokens_to_ids(chat["stop"] or tok.eos_token), chat["name"]
        assert tok.decode(generated[:-1], skip_special_tokens=False) == chat["completion"], chat["name"]
