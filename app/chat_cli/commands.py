"""The chat's ``!`` commands, as ``transformers chat`` has them (``!help``, ``!clear``, ``!set``, ``!save``,
``!status``, ``!exit``) plus ``!new``, ``!load`` and ``!system``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.chat_cli.display import Display
from app.chat_cli.session import ChatSession, SessionError, parse_assignments

HELP = """Commands:
  !help                 this help
  !clear, !new          start a new conversation (the system prompt stays)
  !system [TEXT]        set the system prompt; without TEXT, remove it
  !set KEY=VALUE ...    generation settings sent with every message: temperature, max_tokens, top_p,
                        seed, stop, chat_template_kwargs, ... (values are JSON where they parse;
                        KEY=null removes one); without arguments, show them
  !save [FILE]          save the conversation and settings as JSON
                        (by default chat_history/<model>/chat_<time>.json)
  !load FILE            load a saved conversation and its settings
  !status               server, model, settings, messages and the last answer's token usage
  !exit                 quit (so do Ctrl-D and !quit)
Anything else is sent to the model. Ctrl-C stops an answer."""

# ``!set a=1 stop=["x y"]``: a new assignment starts where whitespace meets ``key=``.
_NEXT_ASSIGNMENT = re.compile(r"\s+(?=[A-Za-z_][A-Za-z0-9_.]*=)")


class ExitChat(Exception):
    """``!exit``: the chat ends normally."""


def _settings_text(session: ChatSession) -> str:
    if not session.settings:
        return "settings: none (the server's defaults)"
    return "settings: " + " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in session.settings.items())


def status_text(session: ChatSession, url: str) -> str:
    usage = session.last_usage
    lines = [
        f"server: {url}",
        f"model: {session.model}",
        _settings_text(session),
        f"system prompt: {session.system!r}" if session.system is not None else "system prompt: none",
        f"messages: {len(session.messages)} ({session.turns()} from you)",
        f"last answer: {usage[0]} prompt + {usage[1]} completion tokens" if usage else "last answer: -",
    ]
    return "\n".join(lines)


def run_command(line: str, session: ChatSession, display: Display, url: str) -> None:
    """Does one ``!command``; raises ``ExitChat`` for ``!exit`` and ``SessionError`` for a bad one."""
    name, _, rest = line.removeprefix("!").partition(" ")
    rest = rest.strip()
    name = name.lower()
    if name == "help":
        display.note(HELP)
    elif name in ("clear", "new"):
        session.clear()
        display.note("New conversation.")
    elif name == "system":
        session.set_system(rest or None)
        display.note("System prompt set." if rest else "System prompt removed.")
    elif name == "set":
        if rest:
            session.apply(parse_assignments(_NEXT_ASSIGNMENT.split(rest)))
        display.note(_settings_text(session))
    elif name == "save":
        display.note(f"Saved to {session.save(Path(rest).expanduser() if rest else None)}")
    elif name == "load":
        if not rest:
            raise SessionError("!load needs a file: !load FILE")
        session.load(Path(rest).expanduser())
        display.note(f"Loaded {len(session.messages)} messages. {_settings_text(session)}")
    elif name == "status":
        display.note(status_text(session, url))
    elif name in ("exit", "quit"):
        raise ExitChat
    else:
        raise SessionError(f"unknown command !{name}; !help lists the commands.")
