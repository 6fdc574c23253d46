"""``compare.py --observability``: hfserve with tracing and metrics off, metrics only, and both on (spans exported
over OTLP/HTTP to bench/otlp_sink.py), with every round's throughput and CPU-per-token ratios to "off" and
bootstrap intervals of their medians."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from otlp_sink import OtlpSink
from servers import MODEL, Servers, machine, measure_interleaved, measure_together, measured_on


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
    where = machine()
    record = {"args": vars(args) | {"hf_home": str(args.hf_home)}, "machine": where, "results": results}
    record["rounds"] = rounds
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
    rows += [f"exported to the sink: {exported}", measured_on(where)]
    return "\n".join(rows)
