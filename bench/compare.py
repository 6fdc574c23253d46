"""hfserve vs upstream ``transformers serve --continuous-batching`` vs static ``generate``, in one run.

Every server serves the same tiny never-EOS model from the same HF cache, offline, on 127.0.0.1, and
gets the same load (bench/loadgen.py). Upstream runs from its own environment (bench/.venv-upstream,
``make bench-env``). Results go to stdout as a Markdown table and to bench/results/*.json.

    .venv/bin/python bench/compare.py --requests 256 --concurrency 32 --max-tokens 64 --prompt-words 25

``--observability`` runs hfserve three times instead, side by side: with tracing and metrics off
(``--no-metrics``, no ``OTEL_*``), with the default metrics only, and on (metrics, and every span exported
over OTLP/HTTP to a sink in this process, bench/otlp_sink.py). It reports every server's rounds, the
throughput and CPU-per-token ratios to "off" of every round, and bootstrap intervals of their medians.
Rounds run one server at a time; with ``--together`` every server is under load at once in each round,
which compares their CPU per token closely (but not their throughput alone).
"""

from __future__ import annotations

import argparse
import json
import os
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
from models import BENCH_MODEL_ID
from models import build as build_bench_model
from otlp_sink import OtlpSink

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MODEL = "hfserve/tiny-never-eos"
WARM_UP_SEED = -2  # the warm-up's prompts: none of them is a measured round's
UPSTREAM = BENCH / ".venv-upstream" / "bin" / "transformers"


def upstream_cb(args: argparse.Namespace) -> list[str]:
    """Upstream's continuous batching, its paged cache sized to fit the load (block size 32)."""
    return [
        "--continuous-batching",
        "--cb-block-size",
        "32",
        "--cb-num-blocks",
        str(args.upstream_cb_blocks),
        "--cb-max-batch-tokens",
        str(args.upstream_cb_batch_tokens),
    ]


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


def _ratios(rounds: dict[str, list[dict[str, object]]], name: str, key: str, base: str = "off") -> list[float]:
    """``key`` of ``name`` over ``key`` of ``base``, round by round (each pair ran back to back)."""
    return [
        float(b[key]) / float(a[key])  # type: ignore[arg-type]
        for a, b in zip(rounds[base], rounds[name], strict=True)
    ]


def _interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 90% bootstrap interval of the median of ``values`` (rounds resampled with replacement)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(draws * 0.05)], medians[int(draws * 0.95) - 1]


def _pooled(runs: list[dict[str, object]]) -> float:
    """Tokens over seconds, summed over every round."""
    return sum(float(r["output_tokens"]) for r in runs) / sum(float(r["elapsed_s"]) for r in runs)  # type: ignore[arg-type]


def observability_overhead(env: dict[str, str], args: argparse.Namespace, logs: Path) -> str:
    """hfserve with tracing and metrics off, metrics only, and both on (spans exported to a local sink),
    rounds interleaved."""
    hfserve = [str(Path(sys.executable).parent / "hfserve"), "serve", MODEL, "--host", "127.0.0.1"]
    with OtlpSink() as sink:
        # spans leave every 200 ms instead of the default 5 s, so a round's export work falls inside it
        on = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_SERVICE_NAME": "hfserve-bench",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        servers: Servers = {
            "off": ([*hfserve, "--port", "8321", "--no-metrics"], 8321, {}),
            "metrics": ([*hfserve, "--port", "8323"], 8323, {}),  # the default: metrics on, no OTEL_* set
            "on": ([*hfserve, "--port", "8322"], 8322, on),
        }
        if args.together:
            results, rounds = measure_together(servers, env, args, logs)
        else:
            results, rounds = measure_interleaved(servers, env, args, logs, with_ceiling=False)
        exported = sink.counts()
    record = {"args": vars(args) | {"hf_home": str(args.hf_home)}, "results": results, "rounds": rounds}
    (logs / "results.json").write_text(json.dumps(record | {"exported": exported}, indent=2))
    rows = [
        "| hfserve | output tok/s: median round / pooled | CPU µs per token: HTTP / engine / export / all "
        "(medians) | TTFT p50 / p99 ms | ITL p50 / p99 ms | failed |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['output_tok_s']} / {_pooled(rounds[name]):.0f} | {r['http_cpu_us_per_token']} / "
            f"{r['engine_cpu_us_per_token']} / {r['export_cpu_us_per_token']} / {r['cpu_us_per_token']} | "
            f"{r['ttft_ms_p50']} / {r['ttft_ms_p99']} | {r['itl_ms_p50']} / {r['itl_ms_p99']} | {r['failed']} |"
        )
    rows.append("")
    for name in ("metrics", "on"):
        throughput = _ratios(rounds, name, "output_tok_s")
        low, high = _interval(throughput)
        cpu = _ratios(rounds, name, "cpu_us_per_token")
        cpu_low, cpu_high = _interval(cpu)
        rows += [
            f"**{name} / off**, throughput per round: {[round(x, 3) for x in throughput]}",
            f"- throughput: median {statistics.median(throughput):.3f} (90% interval {low:.3f} to {high:.3f}); "
            f"pooled {_pooled(rounds[name]) / _pooled(rounds['off']):.3f}",
            f"- server CPU per token: median {statistics.median(cpu):.3f} "
            f"(90% interval {cpu_low:.3f} to {cpu_high:.3f})",
        ]
    tracing = _ratios(rounds, "on", "cpu_us_per_token", base="metrics")
    low, high = _interval(tracing)
    rows.append(
        f"**on / metrics**, the cost of tracing alone, server CPU per token: median {statistics.median(tracing):.3f} "
        f"(90% interval {low:.3f} to {high:.3f})"
    )
    rows.append(f"exported to the sink: {exported}")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf-home", type=Path, default=ROOT / ".cache" / "tiny-models")
    p.add_argument("--requests", type=int, default=256)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=25)
    p.add_argument(
        "--shared-prefix-words",
        type=int,
        default=0,
        help="the agent load: a system prompt of this many words that every request re-sends",
    )
    p.add_argument("--turns", type=int, default=1, help="the multi-turn load: turns per conversation, history resent")
    p.add_argument(
        "--model",
        default=MODEL,
        choices=[MODEL, BENCH_MODEL_ID],
        help=f"{BENCH_MODEL_ID}: the ~30M-parameter Qwen3 bench/models.py builds offline",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "bfloat16", "float32"],
        help="every server's --dtype (auto: the checkpoint's, float32 for the bench's models)",
    )
    p.add_argument("--kv-tokens", type=int, help="hfserve's --max-kv-tokens (default: its own sizing)")
    p.add_argument("--upstream-cb-blocks", type=int, default=256, help="upstream's --cb-num-blocks (32 tokens each)")
    p.add_argument("--upstream-cb-batch-tokens", type=int, default=512, help="upstream's --cb-max-batch-tokens")
    p.add_argument("--rounds", type=int, default=3, help="load runs per server; the median is reported")
    p.add_argument(
        "--together",
        action="store_true",
        help="with --observability: load every server at once each round (compares CPU per token closely)",
    )
    p.add_argument("--seed", type=int, default=0, help="of the order servers take in each cycle of rounds")
    p.add_argument("--pause", type=float, default=0.5, help="seconds of quiet after each round")
    p.add_argument("--skip-upstream", action="store_true")
    p.add_argument(
        "--observability", action="store_true", help="hfserve with tracing and metrics off vs on, nothing else"
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="extra hfserve run with these flags, e.g. '--stream-interval-ms 4' (repeatable)",
    )
    args = p.parse_args()

    subprocess.run(
        [sys.executable, "-m", "tests.fixtures", "--hf-home", str(args.hf_home), "--models", MODEL],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    if args.model == BENCH_MODEL_ID:
        build_bench_model(args.hf_home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFSERVE_", "OTEL_"))}
    env.update(HF_HOME=str(args.hf_home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    logs = BENCH / "results" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    if args.observability:
        print(observability_overhead(env, args, logs))
        return
    dtype = ["--dtype", args.dtype]
    hfserve = [str(Path(sys.executable).parent / "hfserve"), "serve", args.model, "--host", "127.0.0.1", *dtype]
    if args.kv_tokens:
        hfserve += ["--max-kv-tokens", str(args.kv_tokens)]
    servers: Servers = {"hfserve": ([*hfserve, "--port", "8301"], 8301, {})}
    for i, flags in enumerate(args.variant):
        servers[f"hfserve {flags}"] = ([*hfserve, "--port", str(8310 + i), *flags.split()], 8310 + i, {})
    if not args.skip_upstream:
        upstream = [
            str(UPSTREAM),
            "serve",
            args.model,
            "--host",
            "127.0.0.1",
            "--port",
            "8302",
            *dtype,
            *upstream_cb(args),
        ]
        servers["upstream"] = (upstream, 8302, {})
    results, _ = measure_interleaved(servers, env, args, logs)
    (logs / "results.json").write_text(
        json.dumps({"args": vars(args) | {"hf_home": str(args.hf_home)}, "results": results}, indent=2)
    )
    print(table(results))


def table(results: dict[str, dict[str, object]]) -> str:
    ours = float(results["hfserve"]["output_tok_s"])  # type: ignore[arg-type]
    rows = [
        "| | output tok/s (median) | every round, in order | req/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | "
        "prefix-cache hit rate | KV held per live token | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if name != "ceiling":
            rows.append(
                f"| {name} | {r['output_tok_s']} | {r['rounds_tok_s']} | {r['req_s']} | "
                f"{r['ttft_ms_p50']} / {r['ttft_ms_p99']} | {r['itl_ms_p50']} / {r['itl_ms_p99']} | "
                f"{r.get('cache_hit_rate', '')} | {r.get('kv_held_per_live_token', '')} | {r['failed']} |"
            )
    static = results["ceiling"]
    rows.append(f"| static `generate`, in-process | {static['output_tok_s']} | {static['rounds_tok_s']} | | | | |")
    rows.append("")
    if "upstream" in results:
        rows.append(f"hfserve / upstream: {ours / float(results['upstream']['output_tok_s']):.2f}x")  # type: ignore[arg-type]
    rows.append(f"hfserve / static ceiling: {ours / float(static['output_tok_s']):.0%}")  # type: ignore[arg-type]
    cpu = {name: r["loadgen_cpu_s"] for name, r in results.items() if name != "ceiling"}
    rows.append(f"load generator CPU seconds in the median round: {cpu}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
