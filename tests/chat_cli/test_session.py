"""Chat state: settings from key=value (JSON values), the system prompt, and save/load round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat_cli.session import ChatSession, SessionError, is_assignment, parse_assignments


def test_values_are_json_where_they_parse() -> None:
    parsed = parse_assignments(["temperature=0.5", "max_tokens=64", 'stop=["\\n"]', "seed=null", "user=ann"])
    assert parsed == {"temperature": 0.5, "max_tokens": 64, "stop": ["\n"], "seed": None, "user": "ann"}


@pytest.mark.parametrize("bad", ["temperature", "=1", "1x=2", "model=other", "stream=false", "messages=[]"])
def test_what_is_not_a_setting_is_refused(bad: str) -> None:
    with pytest.raises(SessionError):
        parse_assignments([bad])


def test_assignments_are_told_from_urls() -> None:
    assert is_assignment("temperature=0") and not is_assignment("http://host:8000/v1?x=1")
    assert not is_assignment("localhost:8000")


def test_null_removes_a_setting_and_clear_keeps_the_system_prompt() -> None:
    session = ChatSession("m", settings={"temperature": 1.0})
    session.apply({"temperature": None, "top_p": 0.9})
    assert session.settings == {"top_p": 0.9}
    session.set_system("Be brief.")
    session.messages += [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    session.set_system("Be kind.")
    assert session.messages[0] == {"role": "system", "content": "Be kind."} and len(session.messages) == 3
    session.clear()
    assert session.messages == [{"role": "system", "content": "Be kind."}] and session.turns() == 0
    session.set_system(None)
    assert session.messages == [] and session.system is None


def test_save_then_load_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    session = ChatSession("org/model@main", settings={"temperature": 0.2})
    session.messages = [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "hi"}]
    monkeypatch.chdir(tmp_path)
    path = session.save(None)
    assert path.parent == Path("chat_history") / "org_model_main" and path.name.startswith("chat_")
    other = ChatSession("another")
    other.load(path)
    assert other.messages == session.messages and other.settings == session.settings and other.model == "another"


def test_files_that_are_no_chat_are_refused(tmp_path: Path) -> None:
    session = ChatSession("m")
    for name, text in [("a.json", "{"), ("b.json", '{"messages": [{"content": "x"}]}'), ("c.json", "[]")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(SessionError):
            session.load(tmp_path / name)
    with pytest.raises(SessionError, match="cannot read"):
        session.load(tmp_path / "missing.json")
    assert session.messages == []
