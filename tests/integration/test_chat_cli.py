"""``hfserve chat`` end to end against a real server on the tiny model: messages piped in one per line
(answers printed plain, ``!set`` applied, ``!save`` then ``!load`` in a second run), no server there
(one line, exit 1), and the interactive side under a real pty (streamed answer, dimmed reasoning, ``!exit``)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx

from app.chat_cli.display import DIM
from app.demo.canned_chats import CANNED_CHATS, CAPITAL_ANSWER, GREETING
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.support.server import ROOT, ServerProcess, free_port

CAPITAL_REASONING = next(chat["reasoning"] for chat in CANNED_CHATS if chat["name"] == "capital-thinking")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HFSERVE_", "OPENAI_", "NO_COLOR"))}
    env["TERM"] = "xterm"
    return env


def _chat(*args: str, stdin: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app", "chat", *args]
    env = {**_env(), "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_piped_messages_are_answered_one_per_line_with_settings_applied(server: ServerProcess, tmp_path: Path) -> None:
    no_thinking = 'chat_template_kwargs={"enable_thinking": false}'
    lines = ["Hello", "!clear", f"!set max_tokens=2 {no_thinking}", "Hello", "!status"]
    run = _chat(server.url, "temperature=0", "--model", CHAT_MODEL_ID, stdin="\n".join(lines) + "\n", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.splitlines()
    assert first == GREETING
    assert second and GREETING.startswith(second) and len(second) < len(GREETING)
    assert "\x1b[" not in run.stdout  # no colors through a pipe
    assert "max_tokens=2" in run.stderr and "completion tokens" in run.stderr


def test_a_saved_chat_loads_into_a_new_run_and_carries_on(server: ServerProcess, tmp_path: Path) -> None:
    saved = tmp_path / "chat.json"
    lines = f"Hello\n!set seed=7\n!save {saved}\n"
    first = _chat(server.url, "temperature=0", "--model", CHAT_MODEL_ID, stdin=lines, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    document = json.loads(saved.read_text())
    history = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": GREETING}]
    assert document == {"model": CHAT_MODEL_ID, "settings": {"temperature": 0, "seed": 7}, "messages": history}

    second = _chat(server.url, "-m", CHAT_MODEL_ID, stdin=f"!load {saved}\nWhat is my name?\n!status\n", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Loaded 2 messages" in second.stderr and "seed=7" in second.stderr and "messages: 4" in second.stderr
    charged = int(re.search(r"last answer: (\d+) prompt", second.stderr).group(1))
    asked = [*history, {"role": "user", "content": "What is my name?"}]
    counted = httpx.post(f"{server.url}/tokenize", json={"model": CHAT_MODEL_ID, "messages": asked}, timeout=30)
    assert charged == counted.json()["count"]  # the loaded history went with the question


def test_the_first_listed_model_is_used_without_model(server: ServerProcess, tmp_path: Path) -> None:
    listed = httpx.get(f"{server.base_url}/models", timeout=30).json()["data"][0]["id"]
    run = _chat(server.url, stdin="!status\n", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"model: {listed}" in run.stderr


def test_load_progress_comes_before_the_first_message_and_a_failed_load_ends_the_chat(
    server: ServerProcess, tmp_path: Path
) -> None:
    run = _chat(server.url, "--model", NEVER_EOS_MODEL_ID, stdin="!status\n", cwd=tmp_path)  # not loaded yet
    assert run.returncode == 0, run.stderr
    stages = [line for line in run.stderr.splitlines() if line.startswith(("loading", "loaded"))]
    assert stages[-2:] == [f"loading {NEVER_EOS_MODEL_ID}: weights", f"loaded {NEVER_EOS_MODEL_ID}"]
    missing = _chat(server.url, "--model", "nobody/nothing", stdin="Hello\n", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("hfserve chat: the server could not load nobody/nothing: ")
    assert len(missing.stderr.splitlines()) == 1


def test_no_server_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = _chat(url, stdin="Hello\n", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"hfserve chat: no server answers at {url} (connection refused). Start one with `hfserve serve`."
    ]


class _Terminal:
    """A child process on a real pseudo-terminal: what it writes is read back as it comes."""

    def __init__(self, command: list[str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**_env(), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(  # its own session, with the pty as its controlling terminal (for Ctrl-C)
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.output = ""

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never came; the terminal shows:\n{self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    assert text in self.output, f"{text!r} never came:\n{self.output!r}"
        return self.output

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


def test_interactive_chat_under_a_pty_streams_with_dimmed_reasoning(server: ServerProcess) -> None:
    terminal = _Terminal([sys.executable, "-m", "app", "chat", server.url, "temperature=0", "-m", CHAT_MODEL_ID])
    try:
        terminal.read_until("!help for commands")
        terminal.type("What is the capital of France?")
        shown = terminal.read_until(CAPITAL_ANSWER)
        assert f"{DIM}{CAPITAL_REASONING}" in shown  # the reasoning came dimmed, before the answer
        assert shown.index(CAPITAL_REASONING) < shown.rindex(CAPITAL_ANSWER)
        terminal.type("!exit")
        assert terminal.proc.wait(timeout=30) == 0
    finally:
        terminal.close()


def test_ctrl_c_stops_an_answer_and_the_chat_goes_on(server: ServerProcess) -> None:
    terminal = _Terminal([sys.executable, "-m", "app", "chat", server.url, "--model", NEVER_EOS_MODEL_ID])
    try:
        terminal.read_until("!help for commands")
        terminal.type("Go on forever")  # this model never ends an answer by itself
        terminal.read_until("Go on forever\r\n")
        time.sleep(0.5)
        os.write(terminal.master, b"\x03")
        terminal.read_until("[interrupted]")
        terminal.type("!status")
        assert "messages: 2 (1 from you)" in terminal.read_until("last answer")  # the partial answer is kept
        terminal.type("!exit")
        assert terminal.proc.wait(timeout=30) == 0
    finally:
        terminal.close()
