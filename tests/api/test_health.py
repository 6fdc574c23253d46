"""GET /metrics after real traffic: every value agrees with what the clients were sent."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from openai import NotFoundError, OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ServerProcess, run_server

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
USER = [{"role": "user", "content": "Tell me a story."}]
CHAT_MODEL, NEVER_EOS = f"{CHAT_MODEL_ID}@main", f"{NEVER_EOS_MODEL_ID}@main"


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels."""
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= set(series))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_metrics_agree_with_the_responses(server: ServerProcess, client: OpenAI) -> None:
    before = scrape(server)
    usage: Counter[tuple[str, str]] = Counter()
    chat = client.chat.completions.create(model=CHAT_MODEL_ID, messages=USER, max_tokens=8, n=2, temperature=0)
    usage[(CHAT_MODEL, "prompt")] += chat.usage.prompt_tokens
    usage[(CHAT_MODEL, "completion")] += chat.usage.completion_tokens
    chunks = list(
        client.chat.completions.create(
            model=NEVER_EOS_MODEL_ID, messages=USER, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    usage[(NEVER_EOS, "prompt")] += chunks[-1].usage.prompt_tokens
    usage[(NEVER_EOS, "completion")] += chunks[-1].usage.completion_tokens
    completion = client.completions.create(model=NEVER_EOS_MODEL_ID, prompt=["once upon", "a time"], max_tokens=4)
    usage[(NEVER_EOS, "prompt")] += completion.usage.prompt_tokens
    usage[(NEVER_EOS, "completion")] += completion.usage.completion_tokens
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="nobody/nothing", messages=USER)
    bad = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json", timeout=10)
    assert bad.status_code == 400

    wait_for(lambda: total(scrape(server), "hfserve_requests_running") == 0)
    after = scrape(server)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    for model in (CHAT_MODEL, NEVER_EOS):
        assert delta("hfserve_prompt_tokens_total", model=model) == usage[(model, "prompt")]
        assert delta("hfserve_generation_tokens_total", model=model) == usage[(model, "completion")]
        assert value(after, "hfserve_model_loaded", model=model) == 1
        assert value(after, "hfserve_model_load_duration_seconds_count", model=model) == 1
        assert value(after, "hfserve_requests_waiting", model=model) == 0
        assert value(after, "hfserve_requests_running", model=model) == 0
    assert delta("hfserve_requests_total", endpoint=CHAT, status="200") == 2
    assert delta("hfserve_requests_total", endpoint=CHAT, status="200", model=NEVER_EOS, finish_reason="length") == 1
    assert delta("hfserve_requests_total", endpoint=COMPLETIONS, status="200", finish_reason="length") == 1
    assert delta("hfserve_requests_total", endpoint=CHAT, status="404", model="", finish_reason="none") == 1
    assert delta("hfserve_requests_total", endpoint=CHAT, status="400") == 1
    assert delta("hfserve_errors_total", endpoint=CHAT, type="model_not_found") == 1
    assert delta("hfserve_errors_total", endpoint=CHAT, type="invalid_request_error") == 1
    assert delta("hfserve_errors_total") == 2
    # one time to first token and one end-to-end latency per request that reached a model
    assert delta("hfserve_time_to_first_token_seconds_count", endpoint=CHAT) == 2
    assert delta("hfserve_time_to_first_token_seconds_count", endpoint=COMPLETIONS) == 1
    assert delta("hfserve_e2e_request_latency_seconds_count") == 3
    assert delta("hfserve_request_queue_time_seconds_count") == 4  # the completions request holds two prompts
    # gaps between tokens: all but the first token of every choice that streamed tokens
    assert delta("hfserve_inter_token_latency_seconds_count", model=NEVER_EOS) == (6 - 1) + 2 * (4 - 1)
    assert delta("hfserve_client_disconnects_total") == 0


def test_a_client_that_leaves_is_counted(server: ServerProcess) -> None:
    before = scrape(server)
    body = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900, "stream": True}
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{server.base_url}/chat/completions", json=body) as r:
        lines = r.iter_lines()
        for _ in range(4):
            next(lines)

    def left() -> bool:
        now = scrape(server)
        return total(now, "hfserve_client_disconnects_total") - total(before, "hfserve_client_disconnects_total") == 1

    wait_for(left)
    wait_for(lambda: total(scrape(server), "hfserve_requests_running") == 0)
    after = scrape(server)
    assert value(after, "hfserve_client_disconnects_total", model=NEVER_EOS, endpoint=CHAT) >= 1
    left_early = total(after, "hfserve_requests_total", status="499")
    assert left_early - total(before, "hfserve_requests_total", status="499") == 1
    generated = total(after, "hfserve_generation_tokens_total") - total(before, "hfserve_generation_tokens_total")
    assert 0 < generated < 1900  # what was generated before the abort, no more
    assert total(after, "hfserve_errors_total") == total(before, "hfserve_errors_total")  # leaving is no error


def _leave_mid_body(server: ServerProcess) -> None:
    """Announce a 1,000-byte body, send 20 bytes of it, and hang up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"model": "x", "mess')
        time.sleep(0.3)


def _leave_before_a_plain_answer(server: ServerProcess) -> None:
    """A non-streaming request whose client gives up before the answer."""
    body = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=1.5)


@pytest.mark.parametrize("leave", [_leave_mid_body, _leave_before_a_plain_answer])
def test_every_client_that_leaves_is_one_499_in_every_metric_and_one_log_line(
    server: ServerProcess, leave: Callable[[ServerProcess], None]
) -> None:
    before, lines_before = scrape(server), server.log().count("client_disconnected")
    leave(server)

    def counted() -> float:
        now = scrape(server)
        was = total(before, "hfserve_requests_total", status="499")
        return total(now, "hfserve_requests_total", status="499") - was

    wait_for(lambda: counted() == 1)
    wait_for(lambda: total(scrape(server), "hfserve_requests_running") == 0)
    after = scrape(server)
    left = total(after, "hfserve_client_disconnects_total") - total(before, "hfserve_client_disconnects_total")
    assert left == 1, "the 499 status and the disconnect counter must agree"
    assert total(after, "hfserve_requests_total", status="500") == total(before, "hfserve_requests_total", status="500")
    assert total(after, "hfserve_errors_total") == total(before, "hfserve_errors_total")  # leaving is no error
    wait_for(lambda: server.log().count("client_disconnected") == lines_before + 1)
    during = "request_body" if leave is _leave_mid_body else "response"
    assert f"during={during}" in server.log() or f'"during": "{during}"' in server.log()


def test_router_gauges_follow_a_running_request(hf_home: Path, logs_dir: Path) -> None:
    """What an inference gateway's endpoint picker scrapes, while a request runs and after it."""
    with run_server(hf_home, logs_dir, NEVER_EOS_MODEL_ID, "--max-kv-tokens", "4096", wait="ready") as pinned:
        body = {"model": NEVER_EOS_MODEL_ID, "messages": USER, "max_tokens": 1900, "stream": True}
        with (
            httpx.Client(timeout=60) as http,
            http.stream("POST", f"{pinned.base_url}/chat/completions", json=body) as r,
        ):
            lines = r.iter_lines()
            for _ in range(4):
                next(lines)
            during = scrape(pinned)
        assert total(during, "vllm:num_requests_running") == 1
        assert total(during, "vllm:num_requests_waiting") == 0
        assert 0 < total(during, "vllm:kv_cache_usage_perc") <= 1
        assert total(during, "vllm:kv_cache_usage_perc") == total(during, "hfserve_kv_cache_usage")
        wait_for(lambda: total(scrape(pinned), "vllm:num_requests_running") == 0)
        after = scrape(pinned)
        assert total(after, "vllm:kv_cache_usage_perc") == 0
        config = {"model_name": f"{NEVER_EOS_MODEL_ID}@main", "num_gpu_blocks": "256", "block_size": "16"}
        assert total(after, "vllm:cache_config_info", **config, enable_prefix_caching="True") == 1
        engine = httpx.get(f"{pinned.url}/health").json()["engines"][f"{NEVER_EOS_MODEL_ID}@main"]
        assert (engine["kv_blocks_used"], engine["kv_blocks_total"]) == (0, 256)  # cached blocks are not in use
