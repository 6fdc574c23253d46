"""The ``!`` commands on a chat's state."""

from __future__ import annotations

import io

import pytest

from app.chat_cli.commands import ExitChat, run_command, status_text
from app.chat_cli.display import Display
from app.chat_cli.session import ChatSession, SessionError


def _run(line: str, session: ChatSession) -> str:
    out = io.StringIO()
    run_command(line, session, Display(out, out, styled=False), "http://127.0.0.1:8000")
    return out.getvalue()


def test_set_takes_several_settings_and_json_values_with_spaces() -> None:
    session = ChatSession("m")
    shown = _run('!set temperature=0.3 stop=["a b", "c"] chat_template_kwargs={"enable_thinking": false}', session)
    assert session.settings == {
        "temperature": 0.3,
        "stop": ["a b", "c"],
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert shown.startswith("settings: temperature=0.3")
    _run("!set temperature=null", session)
    assert "temperature" not in session.settings


def test_clear_new_system_and_status() -> None:
    session = ChatSession("m", messages=[{"role": "user", "content": "hi"}])
    _run("!system Be brief.", session)
    _run("!new", session)
    assert session.messages == [{"role": "system", "content": "Be brief."}]
    session.last_usage = (12, 3)
    status = status_text(session, "http://127.0.0.1:8000")
    assert "model: m" in status and "'Be brief.'" in status and "12 prompt + 3 completion tokens" in status
    assert "!save [FILE]" in _run("!help", session)


def test_exit_and_unknown_commands() -> None:
    with pytest.raises(ExitChat):
        _run("!exit", ChatSession("m"))
    with pytest.raises(SessionError, match="unknown command !frobnicate"):
        _run("!frobnicate", ChatSession("m"))
