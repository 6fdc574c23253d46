"""What loading sets up besides the model."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from transformers.utils import logging as transformers_logging

import app.engine.progress  # noqa: F401  (importing it is what routes transformers' logs)
from app.observability.logging import configure_logging


def test_transformers_logs_go_through_the_one_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=True)
    try:
        transformers_logging.get_logger("transformers.generation.utils").warning("Setting `pad_token_id`")
        [line] = [json.loads(s) for s in capsys.readouterr().err.splitlines() if s.strip()]
        assert (line["event"], line["level"]) == ("Setting `pad_token_id`", "warning")
        assert line["logger"] == "transformers.generation.utils"
    finally:
        logging.getLogger().handlers.clear()
        structlog.reset_defaults()
