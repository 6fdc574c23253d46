"""The chat command through a pipe against a server that is not hfserve: the API key from the flag or
the environment, the answers' text only on stdout (reasoning left out, even when inline), and one-line
failures with their exit status."""

from __future__ import annotations

import io

import pytest

from app.chat_cli.app import ChatOptions, api_key_from_env, run_chat
from tests.support.plain_openai_server import Script, chunk, plain_openai_server


def _run(options: ChatOptions, stdin: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_chat(options, stdin=io.StringIO(stdin), stdout=out), out.getvalue()


def test_answers_only_on_stdout_with_inline_reasoning_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    frames = [chunk(content="<thi"), chunk(content="nk>hmm</think>\n\nHi"), chunk(content=" there.")]
    script = Script(frames=frames)
    with plain_openai_server(script) as url:
        status, out = _run(ChatOptions(url, system="Be brief."), "Hello\n\n!set top_p=0.5\nAgain\n")
    assert status == 0 and out == "Hi there.\nHi there.\n"
    assert script.received[1]["top_p"] == 0.5 and "top_p" not in script.received[0]
    history = script.received[1]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
    assert history[2]["content"] == "Hi there."  # the reasoning is not sent back
    assert "top_p=0.5" in capsys.readouterr().err


def test_the_api_key_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HFSERVE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert api_key_from_env() == "sk-env"
    monkeypatch.setenv("HFSERVE_API_KEY", "first,second")
    assert api_key_from_env() == "first"
    with plain_openai_server(Script(frames=[chunk(content="ok")], api_key="first")) as url:
        assert _run(ChatOptions(url), "Hi\n") == (0, "ok\n")
        assert _run(ChatOptions(url, api_key="first"), "Hi\n")[0] == 0


def test_a_refused_key_is_one_line_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HFSERVE_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with plain_openai_server(Script(api_key="secret")) as url:
        assert _run(ChatOptions(url), "Hi\n") == (1, "")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "401" in err[0] and "--api-key" in err[0]


def test_bad_settings_and_bad_commands_fail(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(ChatOptions("127.0.0.1:1", settings=["model=x"]), "")[0] == 2
    with plain_openai_server(Script(frames=[chunk(content="ok")])) as url:
        assert _run(ChatOptions(url), "!load\nHi\n") == (1, "")  # a pipe stops at the first failure
        assert _run(ChatOptions(url), "Hi\n!exit\nnever sent\n") == (0, "ok\n")
    assert "!load needs a file" in capsys.readouterr().err


def test_a_server_without_models_needs_model(capsys: pytest.CaptureFixture[str]) -> None:
    with plain_openai_server(Script(models=[])) as url:
        assert _run(ChatOptions(url), "Hi\n") == (1, "")
    assert "--model" in capsys.readouterr().err
