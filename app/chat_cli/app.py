"""``hfserve chat``: pick the model, show its load progress, then chat: on a terminal line by line with
streamed answers, or one message per line read from a pipe."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TextIO

from app.chat_cli.client import DEFAULT_URL, ChatClientError, ChatServer, Delta, ServerError, Usage
from app.chat_cli.commands import ExitChat, run_command
from app.chat_cli.display import Display
from app.chat_cli.session import ChatSession, SessionError, parse_assignments
from app.chat_cli.think import ThinkSplitter

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True, slots=True)
class ChatOptions:
    url: str = DEFAULT_URL
    model: str | None = None
    api_key: str | None = None
    system: str | None = None
    settings: list[str] = field(default_factory=list)  # key=value


def api_key_from_env() -> str | None:
    """``HFSERVE_API_KEY`` (the first of a server's comma-separated keys), else ``OPENAI_API_KEY``."""
    hfserve = os.environ.get("HFSERVE_API_KEY", "").split(",")[0].strip()
    return hfserve or os.environ.get("OPENAI_API_KEY") or None


def choose_model(server: ChatServer, requested: str | None) -> str:
    if requested:
        return requested
    models = server.models()
    if not models:
        raise ChatClientError(f"{server.url} lists no models; name one with --model.")
    return models[0]


def load(server: ChatServer, model: str, display: Display) -> None:
    """Shows ``/load_model`` progress until the model is ready (servers without it: nothing to show)."""
    for event in server.load_events(model):
        status = event.get("status")
        if status == "loading":
            display.progress(model, event)
        elif status == "ready":
            display.loaded(model, bool(event.get("cached")))
        elif status == "error":
            raise ChatClientError(f"the server could not load {model}: {event.get('message') or 'unknown error'}")


def _auth_hint(exc: ChatClientError) -> str:
    if isinstance(exc, ServerError) and exc.status == 401:
        return f"{exc} (pass --api-key, or set HFSERVE_API_KEY or OPENAI_API_KEY)"
    return str(exc)


class Chat:
    def __init__(self, server: ChatServer, session: ChatSession, display: Display, *, interactive: bool) -> None:
        self.server, self.session, self.display = server, session, display
        self.interactive = interactive  # Ctrl-C stops one answer; through a pipe it ends the run

    def ask(self, text: str) -> None:
        """Sends one user message and streams the answer; the turn is kept only when it was answered."""
        messages = self.session.messages
        messages.append({"role": "user", "content": text})
        answer: list[str] = []
        try:
            for delta in self._deltas():
                if delta.kind == "content":
                    answer.append(delta.text)
                self.display.piece(delta.kind, delta.text)
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.display.end_answer(interrupted=True)
            self._keep(answer)
            return
        except ChatClientError:
            if self.display.answering:
                self.display.end_answer()
            messages.pop()
            raise
        self.display.end_answer()
        self._keep(answer, answered=True)

    def _keep(self, answer: list[str], answered: bool = False) -> None:
        if answer or answered:
            self.session.messages.append({"role": "assistant", "content": "".join(answer)})
        else:
            self.session.messages.pop()

    def _deltas(self) -> Iterator[Delta]:
        splitter = ThinkSplitter()
        session = self.session
        for piece in self.server.stream_chat(session.model, session.messages, session.settings):
            if isinstance(piece, Usage):
                session.last_usage = (piece.prompt_tokens, piece.completion_tokens)
            elif piece.kind == "content":
                yield from splitter.feed(piece.text)
            else:
                yield piece
        yield from splitter.finish()

    def handle(self, line: str) -> None:
        """One line of input: a ``!command`` or a message (raises ``ExitChat`` to end)."""
        if line.startswith("!"):
            run_command(line, self.session, self.display, self.server.url)
        else:
            self.ask(line)


def _lines(stdin: TextIO) -> Iterator[str]:
    for raw in stdin:
        line = raw.strip()
        if line:
            yield line


def run_piped(chat: Chat, lines: Iterable[str]) -> int:
    """One message (or command) per line; the first failure ends the run with exit status 1."""
    try:
        for line in lines:
            chat.handle(line)
    except ExitChat:
        return EXIT_OK
    except (ChatClientError, SessionError) as exc:
        chat.display.error(_auth_hint(exc) if isinstance(exc, ChatClientError) else str(exc))
        return EXIT_FAILED
    return EXIT_OK


def run_interactive(chat: Chat) -> int:
    """Reads lines until ``!exit`` or end of input; errors are shown and the chat goes on."""
    with suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    chat.display.note(f"Chatting with {chat.session.model} at {chat.server.url}. !help for commands, !exit to quit.")
    while True:
        try:
            line = input(chat.display.prompt()).strip()
        except EOFError:
            chat.display.out.write("\n")
            return EXIT_OK
        except KeyboardInterrupt:
            chat.display.out.write("\n")
            continue
        if not line:
            continue
        try:
            chat.handle(line)
        except ExitChat:
            return EXIT_OK
        except (ChatClientError, SessionError) as exc:
            chat.display.error(_auth_hint(exc) if isinstance(exc, ChatClientError) else str(exc))


def run_chat(options: ChatOptions, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """The whole command; returns its exit status."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    interactive = stdin.isatty()
    styled = interactive and stdout.isatty() and not os.environ.get("NO_COLOR")
    display = Display(stdout, sys.stderr, styled=styled)
    try:
        settings = parse_assignments(options.settings)
    except SessionError as exc:
        display.error(str(exc))
        return EXIT_USAGE
    server = ChatServer(options.url, options.api_key or api_key_from_env())
    try:
        session = ChatSession(choose_model(server, options.model))
        load(server, session.model, display)
        session.apply(settings)
        session.set_system(options.system)
        chat = Chat(server, session, display, interactive=interactive)
        return run_interactive(chat) if interactive else run_piped(chat, _lines(stdin))
    except ChatClientError as exc:
        display.error(_auth_hint(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        display.out.write("\n")
        return EXIT_INTERRUPTED
    finally:
        server.close()
