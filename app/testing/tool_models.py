"""Tiny offline models that call tools in the other families' formats (tiny-chat covers Hermes).

Each is trained like tiny-chat (see :func:`app.testing.training.fit_canned_chats`) on
:func:`app.testing.tool_chats.tool_chats` in its own format, with its family's tokens and a chat
template from :mod:`app.testing.tool_templates`, so greedy decoding reproduces every canned answer:

* :data:`QWEN3_CODER_MODEL_ID`: Qwen3 with a Qwen3-Coder template (XML calls; ``<function=`` in
  the template selects the ``qwen3_coder`` parser).
* :data:`LLAMA3_MODEL_ID`: Llama (``model_type`` ``llama``), Llama 3.1 header tokens with
  ``<|python_tag|>`` special, ``<|eot_id|>`` as eos and ``<|end_of_text|>``/``<|eom_id|>`` also ending
  generation (``llama3_json``).
* :data:`MISTRAL_MODEL_ID`: Mistral, ``[INST]``/``[TOOL_CALLS]``/``[TOOL_RESULTS]`` control tokens all
  special, ``</s>`` eos and no pad token, as in Mistral-7B-Instruct-v0.3 (``mistral``).
* :data:`GEMMA4_MODEL_ID`: Gemma 4's text model (``model_type`` ``gemma4_text``; sliding-window and
  full attention layers), its turn, channel, tool and ``<|"|>`` tokens all special, ``<eos>`` as the
  tokenizer's eos while generation also ends at ``<turn|>`` and, after a call, at ``<|tool_response>``
  (``gemma4`` tool and reasoning parsers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.testing.tokenizer import TokenizerSpec, build_tokenizer
from app.testing.tool_chats import render_gemma4, render_llama3, render_mistral, render_qwen3_coder, tool_chats
from app.testing.tool_templates import GEMMA4_TEMPLATE, LLAMA3_TEMPLATE, MISTRAL_TEMPLATE, QWEN3_CODER_TEMPLATE
from app.testing.training import causal_lm, fit_canned_chats, init_weights, padded, qwen3_model, save_model, seeded

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

QWEN3_CODER_MODEL_ID = "hfserve/tiny-qwen3-coder"
LLAMA3_MODEL_ID = "hfserve/tiny-llama3"
MISTRAL_MODEL_ID = "hfserve/tiny-mistral"
GEMMA4_MODEL_ID = "hfserve/tiny-gemma4"

QWEN3_CODER_TOKENIZER = TokenizerSpec(
    special_tokens=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    text_tokens=("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
    eos="<|im_end|>",
    pad="<|endoftext|>",
    bos=None,
    chat_template=QWEN3_CODER_TEMPLATE,
    chats=tool_chats(render_qwen3_coder),
)

LLAMA3_TOKENIZER = TokenizerSpec(
    special_tokens=(
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
        "<|finetune_right_pad_id|>",
    ),
    text_tokens=(),
    eos="<|eot_id|>",
    pad="<|finetune_right_pad_id|>",
    bos="<|begin_of_text|>",
    chat_template=LLAMA3_TEMPLATE,
    chats=tool_chats(render_llama3),
)
LLAMA3_STOPS = ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")

MISTRAL_TOKENIZER = TokenizerSpec(
    special_tokens=(
        "<unk>",
        "<s>",
        "</s>",
        "[INST]",
        "[/INST]",
        "[TOOL_CALLS]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
    ),
    text_tokens=(),
    eos="</s>",
    pad=None,
    bos="<s>",
    chat_template=MISTRAL_TEMPLATE,
    chats=tool_chats(render_mistral),
)

GEMMA4_TOKENIZER = TokenizerSpec(
    special_tokens=(
        "<pad>",
        "<eos>",
        "<bos>",
        "<|turn>",
        "<turn|>",
        "<|think|>",
        "<|channel>",
        "<channel|>",
        "<|tool>",
        "<tool|>",
        "<|tool_call>",
        "<tool_call|>",
        "<|tool_response>",
        "<tool_response|>",
        '<|"|>',
    ),
    text_tokens=(),
    eos="<eos>",
    pad="<pad>",
    bos="<bos>",
    chat_template=GEMMA4_TEMPLATE,
    chats=tool_chats(render_gemma4, call_stop="<|tool_response>", thinking=True),
)
GEMMA4_STOPS = ("<eos>", "<turn|>", "<|tool_response>")

ModelFactory = Callable[["PreTrainedTokenizerFast", int], "PreTrainedModel"]


def _qwen3(tok: PreTrainedTokenizerFast, vocab_size: int) -> PreTrainedModel:
    return qwen3_model(vocab_size, tie=True, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)


def _llama(tok: PreTrainedTokenizerFast, vocab_size: int) -> PreTrainedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    stops = tok.convert_tokens_to_ids(list(LLAMA3_STOPS))
    return causal_lm(LlamaConfig, LlamaForCausalLM, vocab_size, eos=stops, pad=tok.pad_token_id, bos=tok.bos_token_id)


def _mistral(tok: PreTrainedTokenizerFast, vocab_size: int) -> PreTrainedModel:
    from transformers import MistralConfig, MistralForCausalLM

    return causal_lm(
        MistralConfig,
        MistralForCausalLM,
        vocab_size,
        eos=tok.eos_token_id,
        pad=None,
        bos=tok.bos_token_id,
        tie=False,
        sliding_window=None,
    )


def _gemma4(tok: PreTrainedTokenizerFast, vocab_size: int) -> PreTrainedModel:
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    stops = tok.convert_tokens_to_ids(list(GEMMA4_STOPS))
    return causal_lm(
        Gemma4TextConfig,
        Gemma4ForCausalLM,
        vocab_size,
        eos=stops,
        pad=tok.pad_token_id,
        bos=tok.bos_token_id,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=512,
        global_head_dim=16,
        hidden_size_per_layer_input=0,  # no per-layer embeddings (as in the larger Gemma 4 models)
        vocab_size_per_layer_input=vocab_size,
    )


@dataclass(frozen=True)
class ToolModelRecipe:
    spec: TokenizerSpec
    factory: ModelFactory
    steps: int = 100
    lr: float = 5e-3

    def build(self, out_dir: Path, *, seed: int = 0) -> Path:
        """Train the model on its canned chats and save it with its tokenizer into ``out_dir``."""
        out_dir = Path(out_dir)
        tok = build_tokenizer(out_dir, spec=self.spec)
        with seeded(seed) as gen:
            model = self.factory(tok, padded(len(tok)))
            init_weights(model, gen)
            label = f"tiny {model.config.model_type} tool model"
            fit = fit_canned_chats(model, tok, self.spec.chats, steps=self.steps, lr=self.lr, label=label)
        return save_model(model, out_dir, {"kind": "tool-calls", "seed": seed, **fit})


RECIPES: dict[str, ToolModelRecipe] = {
    QWEN3_CODER_MODEL_ID: ToolModelRecipe(QWEN3_CODER_TOKENIZER, _qwen3),
    LLAMA3_MODEL_ID: ToolModelRecipe(LLAMA3_TOKENIZER, _llama),
    MISTRAL_MODEL_ID: ToolModelRecipe(MISTRAL_TOKENIZER, _mistral),
    GEMMA4_MODEL_ID: ToolModelRecipe(GEMMA4_TOKENIZER, _gemma4),
}
TOOL_MODEL_IDS = tuple(RECIPES)
TOOL_BUILDERS: dict[str, Callable[[Path], Path]] = {repo: recipe.build for repo, recipe in RECIPES.items()}


def canned_chats(repo_id: str) -> list[dict[str, Any]]:
    """The chats ``repo_id`` was trained on (each with its exact greedy ``completion``)."""
    return list(RECIPES[repo_id].spec.chats)
