"""hfserve vs upstream ``transformers serve --continuous-batching`` vs static ``generate``, in one run.

Every server serves the same tiny never-EOS model from the same HF cache, offline, on 127.0.0.1, and
gets the same load (bench/loadgen.py). Upstream runs from its own environment (bench/.venv-upstream,
``make bench-env``). Results go to stdout as a Markdown table and to bench/results/*.json.

    .venv/bin/python bench/compare.py --requests 256 --concurrency 32 --max-tokens 64 --prompt-words 25
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MODEL = "hfserve/tiny-never-eos"
UPSTREAM = BENCH / ".venv-upstream" / "bin" / "transformers"
UPSTREAM_CB = [
    "--continuous-batching",
    "--cb-block-size",
    "32",
    "--cb-num-blocks",
    "256",
    "--cb-max-batch-tokens",
    "512",
]


def snapshot(hf_home: Path) -> Path:
    repo = hf_home / "hub" / ("models--" + MODEL.replace("/", "--"))
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


def load(url: str, args: argparse.Namespace, requests: int) -> dict[str, object]:
    command = [
        sys.executable,
        str(BENCH / "loadgen.py"),
        "--url",
        url,
        "--model",
        MODEL,
        "--concurrency",
        str(args.concurrency),
        "--requests",
        str(requests),
        "--max-tokens",
        str(args.max_tokens),
        "--prompt-words",
        str(args.prompt_words),
    ]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def serve_and_measure(
    name: str, command: list[str], env: dict[str, str], port: int, args: argparse.Namespace, logs: Path
) -> dict[str, object]:
    url = f"http://127.0.0.1:{port}"
    proc = start(command, env, logs / f"{name}.log")
    try:
        wait_up(url, proc)
        load(url, args, args.concurrency)  # warm-up: first requests compile, allocate, load the model
        rounds = sorted((load(url, args, args.requests) for _ in range(args.rounds)), key=lambda r: r["output_tok_s"])
    finally:
        stop(proc)
    result = rounds[len(rounds) // 2]  # the median round by throughput
    result["rounds_tok_s"] = [r["output_tok_s"] for r in rounds]
    result["failed"] = sum(int(r["failed"]) for r in rounds)  # type: ignore[call-overload]
    print(f"{name}: {json.dumps(result)}", file=sys.stderr)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hf-home", type=Path, default=ROOT / ".cache" / "tiny-models")
    p.add_argument("--requests", type=int, default=256)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=25)
    p.add_argument("--rounds", type=int, default=3, help="load runs per server; the median is reported")
    p.add_argument("--skip-upstream", action="store_true")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="extra hfserve run with these flags, e.g. '--stream-interval-ms 4' (repeatable)",
    )
    args = p.parse_args()

    subprocess.run(
        [sys.executable, "-m", "app.testing", "--hf-home", str(args.hf_home), "--models", MODEL],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HFSERVE_"))}
    env.update(HF_HOME=str(args.hf_home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    logs = BENCH / "results" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    hfserve = [str(Path(sys.executable).parent / "hfserve"), "serve", MODEL, "--host", "127.0.0.1"]
    results: dict[str, dict[str, object]] = {
        "hfserve": serve_and_measure("hfserve", [*hfserve, "--port", "8301"], env, 8301, args, logs)
    }
    for i, flags in enumerate(args.variant):
        port = 8310 + i
        results[f"hfserve {flags}"] = serve_and_measure(
            f"hfserve-{i}", [*hfserve, "--port", str(port), *flags.split()], env, port, args, logs
        )
    if not args.skip_upstream:
        upstream = [str(UPSTREAM), "serve", MODEL, "--host", "127.0.0.1", "--port", "8302", *UPSTREAM_CB]
        results["upstream"] = serve_and_measure("upstream", upstream, env, 8302, args, logs)
    ceiling = subprocess.run(
        [
            sys.executable,
            str(BENCH / "ceiling.py"),
            "--model-dir",
            str(snapshot(args.hf_home)),
            "--batch",
            str(args.concurrency),
            "--requests",
            str(args.requests),
            "--max-tokens",
            str(args.max_tokens),
            "--prompt-words",
            str(args.prompt_words),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    results["ceiling"] = json.loads(ceiling.stdout.strip().splitlines()[-1])
    (logs / "results.json").write_text(
        json.dumps({"args": vars(args) | {"hf_home": str(args.hf_home)}, "results": results}, indent=2)
    )
    print(table(results))


def table(results: dict[str, dict[str, object]]) -> str:
    ours = float(results["hfserve"]["output_tok_s"])  # type: ignore[arg-type]
    rows = [
        "| | output tok/s (median round) | every round | req/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if name != "ceiling":
            rows.append(
                f"| {name} | {r['output_tok_s']} | {r['rounds_tok_s']} | {r['req_s']} | "
                f"{r['ttft_ms_p50']} / {r['ttft_ms_p99']} | {r['itl_ms_p50']} / {r['itl_ms_p99']} | {r['failed']} |"
            )
    ceiling = results["ceiling"]
    rows.append(f"| static `generate`, in-process | {ceiling['output_tok_s']} | | | | | |")
    rows.append("")
    if "upstream" in results:
        rows.append(f"hfserve / upstream: {ours / float(results['upstream']['output_tok_s']):.2f}x")  # type: ignore[arg-type]
    rows.append(f"hfserve / static ceiling: {ours / float(ceiling['output_tok_s']):.0%}")  # type: ignore[arg-type]
    cpu = {name: r["loadgen_cpu_s"] for name, r in results.items() if name != "ceiling"}
    rows.append(f"load generator CPU seconds in the median round: {cpu}")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
