"""Hostile and unlucky input against a real server: every bad body is a 4xx in OpenAI's error shape that
names the field, never a 500, and what cannot fit is refused fast."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.tiny_models import CHAT_MODEL_ID
from tests.support.server import ServerProcess, run_server

MAX_QUEUE = 4
MAX_BODY = 40_000_000
USER = {"role": "user", "content": "Hi"}
TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
NAMED = {"type": "function", "function": {"name": "get_time"}}
DEEP = "[" * 1000 + "]" * 1000
HUGE = "lorem ipsum " * 2_500_000  # 30 MB


@pytest.fixture(scope="module")
def server(hf_home: Path, logs_dir: Path) -> Iterator[ServerProcess]:
    args = (CHAT_MODEL_ID, "--max-queue", str(MAX_QUEUE), "--max-body-size", str(MAX_BODY))
    with run_server(hf_home, logs_dir, *args, wait="ready") as proc:
        yield proc


def _chat(**fields: Any) -> dict[str, Any]:
    return {"messages": [USER], "max_tokens": 2, **fields}


def _assistant_call(call: Any) -> dict[str, Any]:
    return _chat(messages=[USER, {"role": "assistant", "content": None, "tool_calls": [call]}, USER])


BAD_TOOLS = [[{}], [{"type": "function"}], [{"type": "function", "function": {}}], [{"type": "web_search"}]]

BAD = [
    *[
        ("chat/completions", _chat(tools=tools, tool_choice=choice), f"tools[0].{field}", 400)
        for tools, field in zip(BAD_TOOLS, ("type", "function", "function.name", "type"), strict=True)
        for choice in ("required", NAMED)
    ],
    ("chat/completions", _assistant_call({"function": 5}), "messages[1].tool_calls[0].function", 400),
    ("chat/completions", _assistant_call({"function": {"name": "f", "arguments": DEEP}}),
     "messages[1].tool_calls[0].function.arguments", 400),
    ("chat/completions", _chat(tools=[TOOL], tool_choice={"type": "function"}), "tool_choice", 400),
    ("chat/completions", _chat(tools=[TOOL], tool_choice={"function": 5}), "tool_choice", 400),
    ("chat/completions", _chat(tools=[TOOL], tool_choice={"type": "web_search"}), "tool_choice", 400),
    ("chat/completions", _chat(parallel_tool_calls=0), "parallel_tool_calls", 400),
    ("chat/completions", _chat(stream=1), "stream", 400),
    ("chat/completions", _chat(logprobs=1), "logprobs", 400),
    ("chat/completions", _chat(temperature="1"), "temperature", 400),
    ("chat/completions", _chat(n=True), "n", 400),
    ("chat/completions", _chat(max_tokens=1.5), "max_tokens", 400),
    ("chat/completions", _chat(messages=[{"role": "user", "content": 5}]), "messages[0].content", 400),
    ("chat/completions", _chat(generation_config={"do_sample": 1}), "generation_config", 400),
    ("completions", {"prompt": [[False]], "max_tokens": 2}, "prompt", 400),
    ("completions", {"prompt": [1, True], "max_tokens": 2}, "prompt", 400),
    ("completions", {"prompt": "x", "echo": 0}, "echo", 400),
    ("completions", {"prompt": ["x"] * (MAX_QUEUE + 1), "max_tokens": 1}, "prompt", 400),
    ("responses", {"input": "Hi", "background": 0}, "background", 400),
    ("responses", {"input": "Hi", "store": "false"}, "store", 400),
    ("responses", {"input": "Hi", "tools": [{"type": "function", "function": {}}], "tool_choice": "required"},
     "tools[0].function.name", 400),
    ("responses", {"input": "Hi", "tools": [{"type": "web_search"}], "tool_choice": "required"}, "tools[0]", 400),
    ("responses", {"input": "Hi", "tools": [{"type": "function", "name": 5}]}, "tools[0].name", 400),
]  # fmt: skip


def _check_error(response: httpx.Response, status: int, param: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and isinstance(error["message"], str)
    assert error["param"] is not None and error["param"].startswith(param), error
    return error


@pytest.mark.parametrize(("route", "body", "param", "status"), BAD)
def test_bad_input_is_a_4xx_naming_the_field(
    server: ServerProcess, route: str, body: dict[str, Any], param: str, status: int
) -> None:
    response = httpx.post(f"{server.base_url}/{route}", json=body, timeout=60)
    _check_error(response, status, param)
    assert "Retry-After" not in response.headers


def test_deep_arguments_name_the_arguments(server: ServerProcess) -> None:
    item = {"type": "function_call", "call_id": "c", "name": "f", "arguments": DEEP}
    response = httpx.post(f"{server.base_url}/responses", json={"input": [item]}, timeout=60)
    assert _check_error(response, 400, "input[0].arguments")["param"] == "input[0].arguments"


def test_a_request_that_could_never_be_admitted_says_why(server: ServerProcess) -> None:
    body = {"prompt": ["x"] * (MAX_QUEUE + 1), "max_tokens": 1}
    error = _check_error(httpx.post(f"{server.base_url}/completions", json=body, timeout=60), 400, "prompt")
    assert "--max-queue" in error["message"]
    assert httpx.post(f"{server.base_url}/completions", json={**body, "prompt": ["x"] * MAX_QUEUE}).status_code == 200


def test_ints_are_still_taken_where_numbers_are_expected(server: ServerProcess) -> None:
    body = _chat(temperature=1, top_p=1, presence_penalty=0, parallel_tool_calls=False, tools=[TOOL])
    assert httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=60).status_code == 200


def _worker_rss_kib(server: ServerProcess) -> int:
    """The HTTP worker's resident memory: the Granian worker is the server process's child."""
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    worker = next(pid for pid in children if "app" in Path(f"/proc/{pid}/cmdline").read_text())
    status = Path(f"/proc/{worker}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("chat/completions", _chat(messages=[{"role": "user", "content": HUGE}]), "messages"),
        ("completions", {"prompt": HUGE, "max_tokens": 1}, "prompt"),
        ("responses", {"input": HUGE, "max_output_tokens": 1}, "messages"),
    ],
)
def test_a_30_mb_prompt_is_refused_fast(server: ServerProcess, route: str, body: dict[str, Any], param: str) -> None:
    payload = json.dumps(body).encode()
    started = time.monotonic()
    response = httpx.post(
        f"{server.base_url}/{route}", content=payload, headers={"Content-Type": "application/json"}, timeout=60
    )
    elapsed = time.monotonic() - started
    assert _check_error(response, 400, param)["code"] == "context_length_exceeded"
    assert elapsed < 3.0, f"refused after {elapsed:.1f}s"
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def test_30_mb_prompts_leave_the_worker_memory_where_it_was(server: ServerProcess) -> None:
    payload = json.dumps({"prompt": HUGE, "max_tokens": 1}).encode()
    headers = {"Content-Type": "application/json"}
    httpx.post(f"{server.base_url}/completions", content=payload, headers=headers, timeout=60)  # warm the allocator
    before = _worker_rss_kib(server)
    for _ in range(3):
        httpx.post(f"{server.base_url}/completions", content=payload, headers=headers, timeout=60)
    grown_mib = (_worker_rss_kib(server) - before) / 1024
    assert grown_mib < 64, f"the worker grew by {grown_mib:.0f} MiB"


def test_a_body_over_the_limit_is_413(server: ServerProcess) -> None:
    payload = b'{"prompt": "' + b"x" * (MAX_BODY + 10) + b'"}'
    response = httpx.post(
        f"{server.base_url}/completions", content=payload, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_oversized_upload_is_413(server: ServerProcess) -> None:
    files = {"file": ("big.wav", b"\0" * (MAX_BODY + 10), "audio/wav")}
    response = httpx.post(f"{server.base_url}/audio/transcriptions", files=files, data={"model": "x"}, timeout=60)
    _check_error(response, 413, "file")


def test_options_on_a_stored_response_allows_get_and_delete(server: ServerProcess) -> None:
    response = httpx.options(f"{server.base_url}/responses/resp_123", timeout=10)
    assert response.status_code == 204
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "DELETE", "OPTIONS"} <= allowed


@pytest.mark.parametrize("model", ["~", "/proc/self/cwd", "/", "..", "org/other"])
def test_a_pinned_server_never_shows_where_a_name_leads(server: ServerProcess, model: str) -> None:
    response = httpx.post(f"{server.base_url}/chat/completions", json=_chat(model=model), timeout=30)
    error = _check_error(response, 400, "model")
    assert error["code"] == "model_not_allowed"
    assert error["message"].endswith(f"it cannot serve `{model}`.")
    for revealing in (str(Path.home()), str(Path.cwd()), "/root", "/proc"):
        assert revealing not in error["message"].replace(f"`{model}`", "")
