"""Streaming load generator for OpenAI-compatible chat servers.

Keeps a fixed number of streaming chat requests in flight and reports output tok/s, req/s, time to
first token and inter-token latency. It speaks HTTP/1.1 over raw asyncio sockets (no HTTP client
library) so that its own CPU use, which it reports, stays small next to the server's on a shared
machine.

    python bench/loadgen.py --url http://127.0.0.1:8000 --model hfserve/tiny-never-eos \
        --concurrency 32 --requests 128 --max-tokens 64 --prompt-words 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TEXT = (
    "the river city morning light market people walk along old stone bridge while boats carry fruit bread "
    "and news from distant villages children laugh teachers open windows a cat sleeps on warm steps "
    "merchants count coins clouds drift over green hills and the bells of the tower ring twice"
)
WORDS = TEXT.split(" ")


@dataclass
class Outcome:
    ok: bool = False
    error: str = ""
    started: float = 0.0
    first: float | None = None
    chunks: list[float] = field(default_factory=list)  # arrival time of each content chunk
    completion_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens, where the server reports it
    text: str = ""  # the reply (a multi-turn conversation sends it back)
    finished: bool = False  # a finish_reason arrived (upstream ends streams without [DONE])


def make_prompt(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + ". Continue the story."


async def _read_body(reader: asyncio.StreamReader, chunked: bool) -> AsyncIterator[bytes]:
    if not chunked:
        while data := await reader.read(65536):
            yield data
        return
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await reader.readline()
            return
        data = await reader.readexactly(size)
        await reader.readline()
        yield data


def _handle_frame(frame: bytes, out: Outcome, now: float) -> bool:
    """Returns True at ``[DONE]``."""
    if not frame.startswith(b"data: "):
        return False
    data = frame[6:]
    if data == b"[DONE]":
        return True
    payload = json.loads(data)
    if "error" in payload:
        out.error = json.dumps(payload["error"])[:200]
        return True
    for choice in payload.get("choices") or []:
        out.finished = out.finished or bool(choice.get("finish_reason"))
        if content := (choice.get("delta") or {}).get("content"):
            if out.first is None:
                out.first = now
            out.chunks.append(now)
            out.text += content
    usage = payload.get("usage")
    if usage:
        out.completion_tokens = usage.get("completion_tokens", 0)
        out.prompt_tokens = usage.get("prompt_tokens", 0)
        out.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return False


async def one_request(host: str, port: int, body: bytes) -> Outcome:
    out = Outcome(started=time.perf_counter())
    try:
        reader, writer = await asyncio.open_connection(host, port)
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        writer.write(head + body)
        status = await reader.readline()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if b" 200 " not in status:
            out.error = status.decode("latin-1").strip()
            writer.close()
            return out
        buffer, done = b"", False
        async for data in _read_body(reader, headers.get("transfer-encoding") == "chunked"):
            buffer += data
            now = time.perf_counter()
            while b"\n\n" in buffer and not done:
                frame, buffer = buffer.split(b"\n\n", 1)
                done = _handle_frame(frame.strip(b"\r\n"), out, now)
            if done:
                break
        writer.close()
        out.ok = (done or out.finished) and not out.error and out.first is not None
        if not out.completion_tokens:
            out.completion_tokens = len(out.chunks)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    rng = random.Random(args.seed)
    # the agent load: every request re-sends the same long system prompt (tools, instructions) before its own turn
    shared = make_prompt(random.Random(-1), args.shared_prefix_words) if args.shared_prefix_words else ""
    system = [{"role": "system", "content": shared}] if shared else []
    # the multi-turn load: each conversation sends its turns one after another, each with the whole history
    turns = max(1, args.turns)
    conversations = [[make_prompt(rng, args.prompt_words) for _ in range(turns)] for _ in range(args.requests // turns)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for conversation in conversations:
        queue.put_nowait(conversation)
    outcomes: list[Outcome] = []

    def body(messages: list[dict[str, str]]) -> bytes:
        return json.dumps(
            {
                "model": args.model,
                "messages": messages,
                "max_tokens": args.max_tokens,
                "temperature": args.temperature,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ).encode()

    async def worker() -> None:
        while not queue.empty():
            history = list(system)
            for turn in queue.get_nowait():
                history.append({"role": "user", "content": turn})
                outcome = await one_request(host, port, body(history))
                outcomes.append(outcome)
                history.append({"role": "assistant", "content": outcome.text})

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    ok = [o for o in outcomes if o.ok]
    ttft = [(o.first - o.started) * 1000 for o in ok if o.first is not None]
    gaps = [(b - a) * 1000 for o in ok for a, b in zip(o.chunks, o.chunks[1:], strict=False)]
    tpot = [(o.chunks[-1] - o.chunks[0]) * 1000 / (o.completion_tokens - 1) for o in ok if o.completion_tokens > 1]
    tokens = sum(o.completion_tokens for o in ok)
    return {
        "requests": len(outcomes),
        "failed": len(outcomes) - len(ok),
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
        "elapsed_s": round(elapsed, 3),
        "output_tokens": tokens,
        "output_tok_s": round(tokens / elapsed, 1),
        "req_s": round(len(ok) / elapsed, 2),
        "mean_prompt_tokens": round(statistics.mean(o.prompt_tokens for o in ok), 1) if ok else None,
        "cache_hit_rate": round(sum(o.cached_tokens for o in ok) / max(1, sum(o.prompt_tokens for o in ok)), 3),
        "ttft_ms_p50": round(percentile(ttft, 50), 1),
        "ttft_ms_p99": round(percentile(ttft, 99), 1),
        "itl_ms_p50": round(percentile(gaps, 50), 2),
        "itl_ms_p99": round(percentile(gaps, 99), 2),
        "tpot_ms_p50": round(percentile(tpot, 50), 2),
        "chunks_per_token": round(sum(len(o.chunks) for o in ok) / tokens, 3) if tokens else None,
        "loadgen_cpu_s": round((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime), 2),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--requests", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=60)
    p.add_argument(
        "--shared-prefix-words", type=int, default=0, help="a system prompt of this many words in every request"
    )
    p.add_argument(
        "--turns", type=int, default=1, help="the multi-turn load: conversations of this many turns, history resent"
    )
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    json.dump(asyncio.run(run(args)), sys.stdout)
    print()


if __name__ == "__main__":
    main()
