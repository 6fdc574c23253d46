"""Shared fixtures: tiny offline models in a temporary HF cache, and real server processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import clone_hf_home
from tests.support.server import ROOT, ServerProcess, run_server

# The Hub cannot be reached here: everything runs offline against tiny models built locally.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Built once per recipe and reused across runs (gitignored); each session copies it.
MODEL_BUILD_CACHE = ROOT / ".cache" / "tiny-models"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``HFSERVE_*`` variable from the outer environment; returns ``monkeypatch`` to set some."""
    for name in list(os.environ):
        if name.upper().startswith("HFSERVE_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    """An HF_HOME holding the tiny chat, never-EOS, encoder and unserved models (built offline if needed)."""
    from tests.fixtures.tiny_models import (
        CHAT_MODEL_ID,
        ENCODER_MODEL_ID,
        NEVER_EOS_MODEL_ID,
        UNSERVED_MODEL_ID,
        ensure_tiny_models,
    )

    ensure_tiny_models(
        MODEL_BUILD_CACHE, which=(CHAT_MODEL_ID, NEVER_EOS_MODEL_ID, ENCODER_MODEL_ID, UNSERVED_MODEL_ID)
    )
    return MODEL_BUILD_CACHE


@pytest.fixture(scope="session")
def hf_home(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the tiny-model cache for this session (tests may add models to it)."""
    return clone_hf_home(tiny_models, tmp_path_factory.mktemp("hf_home"))


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def server(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    """An unpinned server over the tiny-model cache."""
    with run_server(hf_home, logs_dir, "--model-timeout", "-1") as proc:
        yield proc


# The media models live in their own cache, so the text-model tests see exactly the models they expect.
MEDIA_BUILD_CACHE = ROOT / ".cache" / "tiny-media-models"


@pytest.fixture(scope="session")
def media_hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME with the tiny LLaVA, Qwen2-Audio and Whisper models plus the tiny chat model."""
    from tests.fixtures.media_models import AUDIO_MODEL_ID, SPEECH_MODEL_ID, VISION_MODEL_ID
    from tests.fixtures.tiny_models import CHAT_MODEL_ID, ensure_tiny_models

    ensure_tiny_models(MEDIA_BUILD_CACHE, which=(VISION_MODEL_ID, AUDIO_MODEL_ID, SPEECH_MODEL_ID, CHAT_MODEL_ID))
    return clone_hf_home(MEDIA_BUILD_CACHE, tmp_path_factory.mktemp("media_hf_home"))


# The embedding and cross-encoder models likewise have their own cache.
POOLING_BUILD_CACHE = ROOT / ".cache" / "tiny-pooling-models"


@pytest.fixture(scope="session")
def pooling_hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME with the tiny embedding models (BERT for sentence-transformers, a Qwen3 one, a bare encoder), the
    tiny cross-encoder and the tiny chat model."""
    from tests.fixtures.pooling_models import CROSS_ENCODER_MODEL_ID, DECODER_EMBEDDING_MODEL_ID, EMBEDDING_MODEL_ID
    from tests.fixtures.tiny_models import CHAT_MODEL_ID, ENCODER_MODEL_ID, ensure_tiny_models

    models = (EMBEDDING_MODEL_ID, CROSS_ENCODER_MODEL_ID, DECODER_EMBEDDING_MODEL_ID, ENCODER_MODEL_ID, CHAT_MODEL_ID)
    ensure_tiny_models(POOLING_BUILD_CACHE, which=models)
    return clone_hf_home(POOLING_BUILD_CACHE, tmp_path_factory.mktemp("pooling_hf_home"))


# The tool-calling models (one per tool-call format) likewise have their own cache.
TOOL_BUILD_CACHE = ROOT / ".cache" / "tiny-tool-models"


@pytest.fixture(scope="session")
def tool_hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An HF_HOME with the tiny Qwen3-Coder, Llama 3, Mistral and Gemma 4 tool-calling models."""
    from tests.fixtures.tiny_models import ensure_tiny_models
    from tests.fixtures.tool_models import TOOL_MODEL_IDS

    ensure_tiny_models(TOOL_BUILD_CACHE, which=TOOL_MODEL_IDS)
    return clone_hf_home(TOOL_BUILD_CACHE, tmp_path_factory.mktemp("tool_hf_home"))
