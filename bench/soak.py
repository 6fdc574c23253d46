"""Soak: waves of mixed requests against a real server, with clients that leave and engines that die.

    .venv/bin/python bench/soak.py [--requests 1000] [--waves 5] [--concurrency 16] [--kills 2]

Starts ``hfserve serve hfserve/tiny-chat`` on 127.0.0.1 (``hfserve demo`` builds the model offline), learns
each prompt's greedy answer from one request alone, then sends ``--requests`` requests in ``--waves``
waves: chat (plain and streamed), completions and responses, ``--disconnect`` of them abandoned by their
client at a random moment. Before some waves it kills the engine process with SIGKILL while requests run.
It checks and prints, per wave:

- wrong results: a completed greedy answer that differs from the one learned alone, or whose usage
  disagrees with its text;
- stuck rows: requests still running or waiting in /metrics once the wave is over;
- unexplained 5xx: any 5xx except those of requests that were running when the engine was killed or
  reached it within 0.25 s of the kill, before its process was reaped (a 429
  or a 503 is retried after a second, as the SDKs do, and counted as a retry);
- the HTTP worker's RSS after the wave (flat within 5% across the waves after the first is the goal).

Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODEL = "hfserve/tiny-chat"
PROMPTS = ["Hello", "Tell me a story.", "What is 2 + 2?", "Name a colour.", "Count to five.", "Say hi to Bob."]
KINDS = ("chat", "chat_stream", "completions", "responses")


@dataclass
class Wave:
    sent: int = 0
    completed: int = 0
    abandoned: int = 0
    retried: int = 0  # 429s and 503s retried after a second
    wrong: list[str] = field(default_factory=list)
    explained_5xx: int = 0
    unexplained_5xx: list[str] = field(default_factory=list)
    other_4xx: list[str] = field(default_factory=list)
    stuck: float = 0.0
    rss_mib: float = 0.0
    killed: bool = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        out += [int(child) for child in children]
    return out


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _worker_and_engine(server_pid: int) -> tuple[int, int | None]:
    """The Granian worker (the HTTP process) and its engine process (a spawned multiprocessing child)."""
    (worker,) = _children(server_pid)
    spawned = [pid for pid in _children(worker) if "multiprocessing" in _cmdline(pid)]
    engines = [pid for pid in spawned if "resource_tracker" not in _cmdline(pid)]
    return worker, (engines[0] if engines else None)


def _body(kind: str, prompt: str, max_tokens: int) -> tuple[str, dict]:
    messages = [{"role": "user", "content": prompt}]
    if kind == "completions":
        return "/v1/completions", {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
    if kind == "responses":
        return "/v1/responses", {
            "model": MODEL,
            "input": prompt,
            "max_output_tokens": max_tokens,
            "temperature": 0,
            "store": False,
        }
    body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    return "/v1/chat/completions", {**body, "stream": kind == "chat_stream"}


def _text(kind: str, response: httpx.Response, streamed: list[str]) -> tuple[str, int]:
    """The answer's text and its completion token count."""
    if kind == "chat_stream":
        chunks = [json.loads(line[6:]) for line in streamed if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        return text, next(c["usage"]["completion_tokens"] for c in chunks if c.get("usage"))
    body = response.json()
    if kind == "chat":
        return body["choices"][0]["message"]["content"] or "", body["usage"]["completion_tokens"]
    if kind == "completions":
        return body["choices"][0]["text"], body["usage"]["completion_tokens"]
    text = "".join(p["text"] for item in body["output"] if item["type"] == "message" for p in item["content"])
    return text, body["usage"]["output_tokens"]


async def _one(http: httpx.AsyncClient, kind: str, prompt: str, leave_after: float | None) -> tuple[int, str, int]:
    path, body = _body(kind, prompt, 24)
    if kind == "chat_stream":
        body["stream_options"] = {"include_usage": True}

    async def run() -> tuple[int, str, int]:
        if kind == "chat_stream":
            async with http.stream("POST", path, json=body) as response:
                lines = [line async for line in response.aiter_lines()]
                if response.status_code != 200:
                    return response.status_code, "\n".join(lines), 0
                if any(line.startswith('data: {"error"') for line in lines):
                    return 500, "\n".join(lines), 0
                return 200, *_text(kind, response, lines)
        response = await http.post(path, json=body)
        if response.status_code != 200:
            return response.status_code, response.text, 0
        return 200, *_text(kind, response, [])

    if leave_after is None:
        return await run()
    try:
        return await asyncio.wait_for(run(), timeout=leave_after)
    except TimeoutError:
        return 499, "", 0


async def _learn(http: httpx.AsyncClient) -> dict[tuple[str, str], str]:
    """Each prompt's greedy answer per endpoint, from one request at a time."""
    answers = {}
    for prompt in PROMPTS:
        for kind in KINDS:
            status, text, _ = await _one(http, kind, prompt, None)
            assert status == 200, (kind, prompt, status, text)
            answers[(kind, prompt)] = text
    return answers


async def _wave(http: httpx.AsyncClient, args: argparse.Namespace, answers: dict, kill: int | None, seed: int) -> Wave:
    rng, wave = random.Random(seed), Wave(killed=kill is not None)
    per_wave = args.requests // args.waves
    gate = asyncio.Semaphore(args.concurrency)
    killed_at: list[float] = []

    async def send(i: int) -> None:
        kind, prompt = rng.choice(KINDS), rng.choice(PROMPTS)
        leave = rng.uniform(0.005, 0.3) if rng.random() < args.disconnect else None
        async with gate:
            started = time.monotonic()
            status, text, tokens = await _one(http, kind, prompt, leave)
            for _ in range(20):  # as the SDKs do: 429 and 503 say when to retry
                if status not in (429, 503):
                    break
                wave.retried += 1
                await asyncio.sleep(1.0)
                status, text, tokens = await _one(http, kind, prompt, leave)
        wave.sent += 1
        if status == 499:
            wave.abandoned += 1
        elif status == 200:
            wave.completed += 1
            if text != answers[(kind, prompt)] or tokens <= 0:
                wave.wrong.append(f"{kind} {prompt!r}: {text!r} != {answers[(kind, prompt)]!r}")
        elif status >= 500:
            # it was running when the engine was killed, or reached it while the killed process was still
            # tearing down (a SIGKILLed process is not reaped at once: tens of milliseconds)
            if any(started <= at + 0.25 for at in killed_at):
                wave.explained_5xx += 1
            else:
                wave.unexplained_5xx.append(f"{status} {text[:200]}")
        elif status != 429:
            wave.other_4xx.append(f"{status} {text[:200]}")

    async def killer() -> None:
        await asyncio.sleep(0.5)
        os.kill(kill, signal.SIGKILL)
        killed_at.append(time.monotonic())

    tasks = [asyncio.create_task(send(i)) for i in range(per_wave)]
    if kill is not None:
        tasks.append(asyncio.create_task(killer()))
    await asyncio.gather(*tasks)
    return wave


async def _settle(http: httpx.AsyncClient, timeout: float = 60.0) -> float:
    """Wait for ready and idle; what is still running or waiting after ``timeout`` is stuck."""
    deadline, busy = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        try:
            ready = (await http.get("/ready")).status_code == 200
            metrics = (await http.get("/metrics")).text
        except httpx.TransportError:  # not listening yet
            await asyncio.sleep(0.2)
            continue
        busy = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(("hfserve_requests_running{", "hfserve_requests_waiting{"))
        )
        if ready and busy == 0:
            return 0.0
        await asyncio.sleep(0.2)
    return busy


async def soak(args: argparse.Namespace, server: subprocess.Popen, port: int) -> list[Wave]:
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits) as http:
        await _settle(http, 300)
        answers = await _learn(http)
        kill_waves = set(random.Random(args.seed).sample(range(1, args.waves), min(args.kills, args.waves - 1)))
        waves = []
        for number in range(args.waves):
            engine = _worker_and_engine(server.pid)[1] if number in kill_waves else None
            wave = await _wave(http, args, answers, engine, args.seed + number)
            wave.stuck = await _settle(http, 120)
            wave.rss_mib = _rss_mib(_worker_and_engine(server.pid)[0])
            waves.append(wave)
            print(
                f"wave {number + 1}: {wave.sent} sent, {wave.completed} completed, {wave.abandoned} left, "
                f"{'engine killed, ' if wave.killed else ''}{len(wave.wrong)} wrong, {wave.stuck:.0f} stuck, "
                f"{wave.explained_5xx} explained 5xx, {len(wave.unexplained_5xx)} unexplained 5xx, "
                f"{len(wave.other_4xx)} other 4xx, {wave.retried} retries of a 429/503, "
                f"HTTP worker RSS {wave.rss_mib:.0f} MiB",
                flush=True,
            )
            for problem in wave.wrong[:3] + wave.unexplained_5xx[:3] + wave.other_4xx[:3]:
                print("   ", problem)
        return waves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--disconnect", type=float, default=0.2)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "app", "demo"], cwd=ROOT, check=True, capture_output=True)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HFSERVE_DRAIN_GRACE": "0"}
    with tempfile.NamedTemporaryFile(prefix="soak-", suffix=".log", delete=False) as log:
        command = [sys.executable, "-m", "app", "serve", MODEL, "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        waves = asyncio.run(soak(args, server, port))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    later = [wave.rss_mib for wave in waves[1:]] or [waves[0].rss_mib]
    rss_spread = (max(later) - min(later)) / min(later)
    failed = sum(len(w.wrong) + len(w.unexplained_5xx) + len(w.other_4xx) for w in waves) + sum(w.stuck for w in waves)
    print(f"RSS spread across waves 2-{len(waves)}: {rss_spread:.1%} (goal <= 5%); server log: {log.name}")
    return 1 if failed or rss_spread > 0.05 else 0


if __name__ == "__main__":
    sys.exit(main())
