"""One log pipeline: structlog and stdlib loggers (granian's too) render the same way, at the chosen level."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest
import structlog
from granian.log import LogLevels
from granian.log import configure_logging as granian_configure_logging

from app.observability.logging import configure_logging, granian_log_config


def lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def restore_logging():
    yield
    logging.getLogger().handlers.clear()
    structlog.reset_defaults()


def test_json_lines_carry_bound_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=True)
    with structlog.contextvars.bound_contextvars(http_request_id="r-1", trace_id="ab" * 16):
        structlog.get_logger("app.test").info("request_finished", model="m", completion_tokens=3)
    [line] = lines(capsys.readouterr().err)
    assert line["event"] == "request_finished" and line["level"] == "info" and line["logger"] == "app.test"
    assert (line["http_request_id"], line["trace_id"], line["completion_tokens"]) == ("r-1", "ab" * 16, 3)
    assert line["timestamp"].endswith("Z")


def test_stdlib_loggers_share_the_pipeline_and_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", json_output=True)
    logging.getLogger("litestar.some_module").info("dropped below the level")
    logging.getLogger("litestar.some_module").warning("kept %s", "here")
    [line] = lines(capsys.readouterr().err)
    assert (line["event"], line["level"], line["logger"]) == ("kept here", "warning", "litestar.some_module")


def test_granian_logs_after_granian_configures_itself(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=True)
    granian_configure_logging(LogLevels.info, granian_log_config("info"))  # what granian's server does
    logging.getLogger("_granian").info("Listening at: http://127.0.0.1:8000")
    [line] = lines(capsys.readouterr().err)
    assert (line["event"], line["logger"]) == ("Listening at: http://127.0.0.1:8000", "_granian")


def test_a_terminal_gets_readable_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_output=False)
    structlog.get_logger("app.test").info("model_loaded", model="m")
    err = capsys.readouterr().err
    assert "model_loaded" in err and "model=m" in err and not err.lstrip().startswith("{")
