"""The offline tiny models: cache layout, tokenizer round trip, trained answers, never-EOS, encoder.

huggingface_hub reads ``HF_HOME``/``HF_HUB_OFFLINE`` at import time, so in-process loads pass
``cache_dir`` and ``local_files_only=True``; one subprocess test covers the env-var route.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import scan_cache_dir
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)

from app.demo import builder
from tests.fixtures.tiny_models import (
    CANNED_CHATS,
    CHAT_MODEL_ID,
    ENCODER_MODEL_ID,
    NEVER_EOS_MODEL_ID,
    build_never_eos_model,
    build_tokenizer,
    ensure_tiny_models,
    install_in_hf_cache,
)

ALL_MODELS = (CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, ENCODER_MODEL_ID)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tiny_hf_home")
    assert sorted(ensure_tiny_models(home, which=ALL_MODELS)) == sorted(ALL_MODELS)
    return home


def _load(cls: Any, hf_home: Path, repo_id: str) -> Any:
    return cls.from_pretrained(repo_id, cache_dir=hf_home / "hub", local_files_only=True)


@pytest.fixture(scope="module")
def chat(hf_home: Path) -> tuple[Any, Any]:
    return _load(AutoModelForCausalLM, hf_home, CHAT_MODEL_ID).eval(), _load(AutoTokenizer, hf_home, CHAT_MODEL_ID)


def _prompt_ids(tok: Any, chat: dict[str, Any]) -> torch.Tensor:
    text = tok.apply_chat_template(
        chat["messages"],
        tools=chat["tools"],
        add_generation_prompt=True,
        tokenize=False,
        **chat["chat_template_kwargs"],
    )
    return tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


def test_cache_layout_is_a_real_hub_cache(hf_home: Path) -> None:
    info = scan_cache_dir(hf_home / "hub")
    assert not info.warnings
    repos = {repo.repo_id: repo for repo in info.repos}
    assert set(repos) == set(ALL_MODELS)
    for repo in repos.values():
        (revision,) = repo.revisions
        assert re.fullmatch(r"[0-9a-f]{40}", revision.commit_hash) and revision.refs == {"main"}
        for file in revision.files:
            assert file.file_path.is_symlink() and file.blob_path.parent.name == "blobs"
    assert not list((hf_home / "hub").glob("*/.tmp-*")), "staging folders left behind"


def test_ensure_is_idempotent_and_install_is_content_addressed(hf_home: Path, tmp_path: Path) -> None:
    assert ensure_tiny_models(hf_home, which=ALL_MODELS) == []
    src = tmp_path / "m"
    src.mkdir()
    (src / "config.json").write_text("{}")
    first = install_in_hf_cache(src, tmp_path / "home", "org/name")
    assert install_in_hf_cache(src, tmp_path / "home", "org/name") == first
    (src / "config.json").write_text('{"a": 1}')
    second = install_in_hf_cache(src, tmp_path / "home", "org/name")
    assert second != first
    assert (tmp_path / "home/hub/models--org--name/refs/main").read_text() == second
    assert len(scan_cache_dir(tmp_path / "home" / "hub").repos) == 1


def test_stale_models_are_rebuilt_and_crash_leftovers_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    assert ensure_tiny_models(home, which=ENCODER_MODEL_ID) == [ENCODER_MODEL_ID]
    repo = home / "hub" / "models--hfserve--tiny-encoder"
    leftover = repo / ".tmp-hfserve" / "crashed"
    leftover.mkdir(parents=True)
    os.utime(leftover, (0, 0))
    monkeypatch.setattr(builder, "recipe_hash", lambda _builder: "changed-recipe")
    assert ensure_tiny_models(home, which=[ENCODER_MODEL_ID]) == [ENCODER_MODEL_ID]
    assert ensure_tiny_models(home, which=[ENCODER_MODEL_ID]) == []
    assert not leftover.exists()
    (repo_info,) = scan_cache_dir(home / "hub").repos
    assert len(repo_info.revisions) == 2  # the old snapshot stays, refs/main moved on
    with pytest.raises(ValueError, match="unknown tiny model"):
        ensure_tiny_models(home, which=["hfserve/nope"])


def test_tokenizer_round_trips(hf_home: Path) -> None:
    built = build_tokenizer()
    for repo_id in ALL_MODELS:
        tok = _load(AutoTokenizer, hf_home, repo_id)
        assert tok.get_vocab() == built.get_vocab()
        text = "<|im_start|>user\nHéllo <think>x</think> <tool_call>{}</tool_call> 42!<|im_end|>\n"
        assert tok(text)["input_ids"] == built(text)["input_ids"]
        assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    tok = _load(AutoTokenizer, hf_home, CHAT_MODEL_ID)
    assert tok.chat_template == built.chat_template
    ids = tok("<think>a</think><tool_call>b</tool_call><|im_end|>")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<think>a</think><tool_call>b</tool_call>"
    assert _load(AutoTokenizer, hf_home, ENCODER_MODEL_ID).chat_template is None


def test_chat_template_follows_qwen3(hf_home: Path) -> None:
    tok = _load(AutoTokenizer, hf_home, CHAT_MODEL_ID)
    msgs = [{"role": "user", "content": "Hi"}]

    def render(messages: list[dict[str, Any]], **kwargs: Any) -> str:
        return tok.apply_chat_template(messages, tokenize=False, **{"add_generation_prompt": True, **kwargs})

    expected = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert render(msgs) == render(msgs, enable_thinking=True) == expected
    assert render(msgs, enable_thinking=False).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    tool_chat = next(c for c in CANNED_CHATS if c["name"] == "weather-tool-result")
    text = render(tool_chat["messages"], tools=tool_chat["tools"])
    assert "<tools>\n" + json.dumps(tool_chat["tools"][0]) + "\n</tools>" in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call><|im_end|>' in text
    assert '<|im_start|>user\n<tool_response>\n{"temperature": 18' in text
    history = [*msgs, {"role": "assistant", "content": "Yes", "reasoning_content": "Think"}]
    last_turn = "<|im_start|>assistant\n<think>\nThink\n</think>\n\nYes<|im_end|>\n"
    assert render(history, add_generation_prompt=False).endswith(last_turn)


@pytest.mark.parametrize("canned", CANNED_CHATS, ids=[c["name"] for c in CANNED_CHATS])
def test_chat_model_reproduces_canned_answer(chat: tuple[Any, Any], canned: dict[str, Any]) -> None:
    model, tok = chat
    ids = _prompt_ids(tok, canned)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, do_sample=False)
    generated = out[0, ids.shape[1] :].tolist()
    assert generated[-1] == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(generated[:-1]) == canned["completion"]
    assert model.config.eos_token_id == model.generation_config.eos_token_id == tok.eos_token_id


def test_never_eos_model_always_hits_max_tokens(hf_home: Path) -> None:
    model = _load(AutoModelForCausalLM, hf_home, NEVER_EOS_MODEL_ID).eval()
    tok = _load(AutoTokenizer, hf_home, NEVER_EOS_MODEL_ID)
    assert not model.config.tie_word_embeddings
    for canned in CANNED_CHATS[::2]:
        ids = _prompt_ids(tok, canned)
        for sampling in ({"do_sample": False}, {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}):
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=96, **sampling)
            generated = out[0, ids.shape[1] :].tolist()
            assert len(generated) == 96 and tok.eos_token_id not in generated
            assert "\ufffd" not in tok.decode(generated)


def test_encoder_is_not_generative(hf_home: Path) -> None:
    config = _load(AutoConfig, hf_home, ENCODER_MODEL_ID)
    assert config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    assert config.model_type not in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
    assert config.architectures == ["DistilBertModel"]
    assert _load(AutoConfig, hf_home, CHAT_MODEL_ID).architectures == ["Qwen3ForCausalLM"]


def test_builders_leave_global_torch_state_alone(tmp_path: Path) -> None:
    torch.manual_seed(1234)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    build_never_eos_model(tmp_path / "a")
    assert torch.equal(torch.random.get_rng_state(), state) and torch.get_num_threads() == threads
    build_never_eos_model(tmp_path / "b")
    assert (tmp_path / "a/model.safetensors").read_bytes() == (tmp_path / "b/model.safetensors").read_bytes()


def test_loading_by_repo_id_with_env_vars(hf_home: Path) -> None:
    code = (
        "from transformers import AutoConfig, AutoTokenizer\n"
        f"tok = AutoTokenizer.from_pretrained({CHAT_MODEL_ID!r})\n"
        f"cfg = AutoConfig.from_pretrained({CHAT_MODEL_ID!r})\n"
        "print(type(tok).__name__, tok.eos_token, cfg.model_type)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["Qwen2Tokenizer", "<|im_end|>", "qwen3"]
