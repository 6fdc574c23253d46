"""The chat client against a server that is not hfserve (a minimal OpenAI-compatible one): no
/load_model, reasoning under ``reasoning``, usage at the end, errors mid-stream and in other shapes."""

from __future__ import annotations

import json

import httpx
import pytest

from app.chat_cli.client import ChatServer, Delta, ServerError, ServerUnreachable, Usage, error_of, root_url
from tests.support.plain_openai_server import Script, chunk, plain_openai_server
from tests.support.server import free_port


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),
        ("https://example.test/proxy/v1", "https://example.test/proxy"),
    ],
)
def test_root_url(given: str, root: str) -> None:
    assert root_url(given) == root


def test_a_stream_gives_reasoning_content_and_usage_and_the_settings_are_sent() -> None:
    usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
    script = Script(frames=[chunk(role="assistant"), chunk(reasoning="mull"), chunk(content="Hi"), usage])
    with plain_openai_server(script) as url:
        server = ChatServer(url + "/v1")
        assert server.models() == ["other/model"]
        assert list(server.load_events("other/model")) == []  # no /load_model there: nothing to wait for
        pieces = list(server.stream_chat("other/model", [{"role": "user", "content": "x"}], {"temperature": 0}))
        server.close()
    assert pieces == [Delta("reasoning", "mull"), Delta("content", "Hi"), Usage(9, 3)]
    sent = script.received[0]
    assert sent["temperature"] == 0 and sent["stream"] is True and sent["model"] == "other/model"


def test_an_error_frame_mid_stream_is_a_server_error() -> None:
    error = json.dumps({"error": {"message": "engine died", "type": "server_error", "code": "engine_error"}})
    with plain_openai_server(Script(frames=[chunk(content="Hi"), error])) as url:
        server = ChatServer(url)
        with pytest.raises(ServerError, match="engine died") as caught:
            list(server.stream_chat("m", [], {}))
        server.close()
    assert caught.value.code == "engine_error"


def test_errors_in_other_shapes_keep_their_message() -> None:
    assert error_of(httpx.Response(422, json={"detail": "bad field"})).message == "bad field"
    assert error_of(httpx.Response(500, text="upstream crashed")).message == "upstream crashed"
    openai_shaped = error_of(httpx.Response(400, json={"error": {"message": "no", "code": "c"}}))
    assert (openai_shaped.status, openai_shaped.message, openai_shaped.code) == (400, "no", "c")


def test_no_server_is_unreachable() -> None:
    server = ChatServer(f"127.0.0.1:{free_port()}")
    with pytest.raises(ServerUnreachable, match="connection refused"):
        server.models()
    server.close()
