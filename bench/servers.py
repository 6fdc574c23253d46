"""Running the servers a benchmark compares: start one, wait until it answers, load it with bench/loadgen.py
(its CPU per token and the KV cache it holds sampled meanwhile), stop it; rounds interleaved or together; the
static ``generate`` ceiling; and the machine the numbers come from (ratios move between machines)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MODEL = "hfserve/tiny-never-eos"
WARM_UP_SEED = -2  # the warm-up's prompts: none of them is a measured round's
UPSTREAM = BENCH / ".venv-upstream" / "bin" / "transformers"


def snapshot(hf_home: Path, model: str = MODEL) -> Path:
    repo = hf_home / "hub" / ("models--" + model.replace("/", "--"))
    return repo / "snapshots" / (repo / "refs" / "main").read_text().strip()


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(url)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(url: str, args: argparse.Namespace, requests: int, seed: int) -> dict[str, object]:
    """``requests`` of the load on ``url``; ``seed`` picks the prompts (the agent load's shared system prompt is
    always the same): each round has its own, so no round finds another's prompts in a prefix cache."""
    command = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--url",
        url,
        "--model",
        args.model,
        "--concurrency",
        str(args.concurrency),
        "--requests",
        str(requests),
        "--max-tokens",
        str(args.max_tokens),
        "--prompt-words",
        str(args.prompt_words),
        "--shared-prefix-words",
        str(args.shared_prefix_words),
        "--turns",
        str(args.turns),
        "--seed",
        str(seed),
    ]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


_ENGINES: dict[int, bool] = {}


def _is_engine(process: psutil.Process) -> bool:
    """An engine process maps libtorch; the span export process (and multiprocessing's resource tracker)
    do not."""
    if process.pid not in _ENGINES:
        _ENGINES[process.pid] = any("libtorch" in m.path for m in process.memory_maps())
    return _ENGINES[process.pid]


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds used so far by a server's processes: its HTTP side (the process we started and its direct
    children: granian's worker), its engine processes, and its other helpers (the span export process)."""
    totals = {"http": 0.0, "engine": 0.0, "export": 0.0}
    top = psutil.Process(pid)

    def add(process: psutil.Process, depth: int) -> None:
        try:
            times = process.cpu_times()
            children = process.children()
            side = "http" if depth <= 1 else "engine" if _is_engine(process) else "export"
        except psutil.NoSuchProcess:
            return
        totals[side] += times.user + times.system
        for child in children:
            add(child, depth + 1)

    add(top, 0)
    return totals


SIDES = ("http", "engine", "export")


class KVSampler:
    """Samples hfserve's /health during a round: the paged cache's token slots in use (blocks x block size) over
    the tokens its live sequences hold, i.e. KV bytes held per byte the live tokens need."""

    def __init__(self, url: str) -> None:
        self._url, self.ratios = url, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                engines = httpx.get(f"{self._url}/health", timeout=2).json().get("engines", {})
            except (httpx.HTTPError, ValueError):
                continue
            for engine in engines.values():
                blocks, live = engine.get("kv_blocks_used", 0), engine.get("kv_live_tokens", 0)
                if blocks and live:
                    size = engine["kv_capacity"] // engine["kv_blocks_total"]
                    self.ratios.append(blocks * size / live)

    def __enter__(self) -> KVSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measured_load(url: str, args: argparse.Namespace, requests: int, pid: int, seed: int) -> dict[str, object]:
    """One round, with the CPU time the server spent on it per generated token: unlike throughput, that
    hardly moves with what else the machine is doing."""
    before = cpu_seconds(pid)
    with KVSampler(url) as kv:
        result = load(url, args, requests, seed)
    after = cpu_seconds(pid)
    if kv.ratios:
        result["kv_held_per_live_token"] = round(statistics.median(kv.ratios), 3)
    tokens = max(1, int(result["output_tokens"]))  # type: ignore[call-overload]
    for side in SIDES:
        result[f"{side}_cpu_us_per_token"] = round((after[side] - before[side]) * 1e6 / tokens, 1)
    result["cpu_us_per_token"] = round(sum(after[s] - before[s] for s in SIDES) * 1e6 / tokens, 1)
    return result


def summarize(rounds: list[dict[str, object]]) -> dict[str, object]:
    ordered = sorted(rounds, key=lambda r: float(r["output_tok_s"]))  # type: ignore[arg-type]
    result = dict(ordered[len(ordered) // 2])  # the median round by throughput
    result["rounds_tok_s"] = [r["output_tok_s"] for r in rounds]  # in the order they ran
    result["failed"] = sum(int(r.get("failed", 0)) for r in rounds)  # type: ignore[call-overload]
    for key in (*(f"{side}_cpu_us_per_token" for side in SIDES), "cpu_us_per_token", "kv_held_per_live_token"):
        if all(key in r for r in rounds):
            result[key] = statistics.median(float(r[key]) for r in rounds)  # type: ignore[arg-type]
    return result


def ceiling(args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    command = [
        sys.executable,
        str(BENCH / "ceiling.py"),
        "--model-dir",
        str(snapshot(args.hf_home, args.model)),
        "--batch",
        str(args.concurrency),
        "--requests",
        str(args.requests),
        "--max-tokens",
        str(args.max_tokens),
        "--prompt-words",
        str(args.prompt_words + args.shared_prefix_words),
        "--dtype",
        args.dtype,
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


Servers = dict[str, tuple[list[str], int, dict[str, str]]]  # name -> (command, port, extra environment)


@contextmanager
def started(servers: Servers, env: dict[str, str], args: argparse.Namespace, logs: Path) -> Iterator[dict[str, Any]]:
    """Every server started, up and warmed up (the first requests compile and allocate); stopped after."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (command, port, extra) in servers.items():
            procs[name] = start(command, env | extra, logs / f"{name.replace(' ', '_')}.log")
            wait_up(f"http://127.0.0.1:{port}", procs[name])
            load(f"http://127.0.0.1:{port}", args, args.concurrency, seed=WARM_UP_SEED)
        yield procs
    finally:
        for proc in procs.values():
            stop(proc)


def measure_interleaved(
    servers: Servers, env: dict[str, str], args: argparse.Namespace, logs: Path, *, with_ceiling: bool = True
) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]:
    """Start every server, then run rounds in turn (A, B, C, then C, A, B...: a new random order each
    cycle): the machine's speed drifts over minutes, and interleaving gives every server the same share of
    good and bad moments. Idle servers use no CPU (checked for upstream with top). Returns the median round
    of each, and every round."""
    rounds: dict[str, list[dict[str, object]]] = {name: [] for name in [*servers, *(["ceiling"] * with_ceiling)]}
    with started(servers, env, args, logs) as procs:
        order, shuffle = list(servers), random.Random(args.seed).shuffle
        for round_seed in range(args.rounds):
            shuffle(order)  # no server always runs first, or always right after another one
            for name in order:
                url, pid = f"http://127.0.0.1:{servers[name][1]}", procs[name].pid
                rounds[name].append(measured_load(url, args, args.requests, pid, round_seed))
                print(f"{name}: {rounds[name][-1]['output_tok_s']} tok/s", file=sys.stderr)
                time.sleep(args.pause)  # what a server still does after its round lands in no other's
            if with_ceiling:
                rounds["ceiling"].append(ceiling(args, env))  # the idle servers use no CPU meanwhile
    return {name: summarize(runs) for name, runs in rounds.items()}, rounds


def measure_together(
    servers: Servers, env: dict[str, str], args: argparse.Namespace, logs: Path
) -> tuple[dict[str, dict[str, object]], dict[str, list[dict[str, object]]]]:
    """Every server under its own load at the same time, round after round: whatever the machine does
    (its speed drifts by a factor of two over minutes here) it does to all of them alike, so their CPU per
    token compares closely. Their throughputs do not measure each alone: they share the cores."""
    rounds: dict[str, list[dict[str, object]]] = {name: [] for name in servers}
    with started(servers, env, args, logs) as procs, ThreadPoolExecutor(len(servers)) as pool:
        for round_seed in range(args.rounds):
            futures = {
                name: pool.submit(
                    measured_load, f"http://127.0.0.1:{port}", args, args.requests, procs[name].pid, round_seed
                )
                for name, (_, port, _) in servers.items()
            }
            for name, future in futures.items():
                rounds[name].append(future.result())
            print({name: runs[-1]["cpu_us_per_token"] for name, runs in rounds.items()}, file=sys.stderr)
            time.sleep(args.pause)
    return {name: summarize(runs) for name, runs in rounds.items()}, rounds


def machine() -> dict[str, object]:
    """Where a run measured: the CPU's model name, its logical CPUs, the GPU if one is visible, and torch."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    probe = "import torch; print(torch.__version__)\nif torch.cuda.is_available(): print(torch.cuda.get_device_name())"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    torch_version, gpu = ([*done.stdout.splitlines(), "", ""])[:2]
    return {"cpu": cpu, "cpus": os.cpu_count(), "gpu": gpu or None, "torch": torch_version or None}


def measured_on(where: dict[str, object]) -> str:
    """The report's last line: which machine gave its numbers."""
    return f"measured on: {where['cpu']}, {where['cpus']} CPUs, GPU {where['gpu'] or 'none'}, torch {where['torch']}"
