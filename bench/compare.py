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
import subprocess
import sys
import time
from pathlib import Path

from models import BENCH_MODEL_ID
from models import build as build_bench_model
from observability import observability_overhead
from servers import BENCH, MODEL, ROOT, UPSTREAM, Servers, machine, measure_interleaved, measured_on


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
    where = machine()
    record = {"args": vars(args) | {"hf_home": str(args.hf_home)}, "machine": where, "results": results}
    (logs / "results.json").write_text(json.dumps(record, indent=2))
    print(table(results))
    print(measured_on(where))


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
