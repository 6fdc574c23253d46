"""The ``hfserve`` command: serve, download, models, demo, chat."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.settings import Settings

_LOOPBACK_NAMES = {"localhost": "127.0.0.1"}


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="Start the OpenAI-compatible server.", argument_default=argparse.SUPPRESS)
    p.add_argument("model", nargs="?", help="Pin the server to this model: org/name[@revision] or a local directory.")
    p.add_argument("--host", help="Address to bind (default localhost).")
    p.add_argument("--port", type=int, help="Port (default 8000).")
    p.add_argument("--continuous-batching", action="store_true", help="Accepted for compatibility.")
    p.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], help="Weights dtype (default auto).")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto).")
    p.add_argument("--attn-implementation", help="e.g. sdpa, eager, flash_attention_2.")
    p.add_argument("--quantization", choices=["bnb-4bit", "bnb-8bit"], help="bitsandbytes quantization.")
    p.add_argument("--trust-remote-code", action="store_true", help="Allow models that ship their own code.")
    p.add_argument("--model-timeout", type=int, help="Idle seconds before a model unloads (default 300, -1 never).")
    p.add_argument("--enable-cors", action="store_true", help="Answer CORS preflights (all origins by default).")
    p.add_argument("--cors-origins", help="Comma-separated allowed origins (with --enable-cors).")
    p.add_argument("--reasoning", choices=["auto", "on", "off"], help="Force enable_thinking on/off (default auto).")
    p.add_argument("--chat-template-kwargs", help="JSON object passed to every chat template.")
    p.add_argument("--default-seed", type=int, help="Seed for requests that send none.")
    p.add_argument(
        "--tool-call-parser",
        help="Tool-call format: hermes, qwen3_coder, llama3_json, mistral, gemma4 (default: detected from the model).",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument("--api-key", action="append", help="Require this Bearer key on /v1/* and /load_model (repeatable).")
    p.add_argument(
        "--allowed-local-model-path",
        dest="allowed_local_model_paths",
        action="append",
        help="A directory below which requests may name local model directories (repeatable; default: none).",
    )
    p.add_argument("--max-queue", type=int, help="Waiting requests per model before 429 (default 256).")
    p.add_argument("--max-batch-size", type=int, help="Most sequences decoded together (default 32).")
    p.add_argument("--max-model-len", type=int, help="Cap on prompt + completion tokens.")
    p.add_argument("--max-num-batched-tokens", type=int, help="Prompt tokens prefilled per step (default 2048).")
    p.add_argument(
        "--cpu-prefill-ms",
        type=float,
        help="On CPU, a step prefills about this many ms of prompt, at its measured cost (e.g. 80; default 0: off).",
    )
    p.add_argument("--max-kv-tokens", type=int, help="Tokens the KV cache holds (paged: its block pool's size).")
    p.add_argument(
        "--gpu-memory-utilization", type=float, help="On CUDA, the share of GPU memory the model and its KV cache use."
    )
    p.add_argument(
        "--no-prefix-caching", dest="prefix_caching", action="store_false", help="Do not reuse cached prompt prefixes."
    )
    p.add_argument("--cpu-threads", type=int, help="torch threads on CPU (default: cores-1; all for a long prefill).")
    p.add_argument(
        "--tensor-parallel-size",
        type=int,
        help="Shard each model across this many GPUs (CPU: processes), one engine process per rank (default 1).",
    )
    p.add_argument(
        "--stream-interval-ms", type=float, help="Send streamed tokens at most this often (default 0: every step)."
    )
    p.add_argument(
        "--drain-grace", type=float, help="Seconds after SIGTERM answering 503 before the listener closes (default 5)."
    )
    p.add_argument("--max-body-size", type=int, help="Largest request body in bytes (default 32 MiB).")
    p.add_argument(
        "--responses-store",
        help="Where stored responses live: memory:// (default), sqlite:///path or redis://host:port/db.",
    )
    p.add_argument("--responses-store-size", type=int, help="Responses kept for previous_response_id (default 1000).")
    p.add_argument("--responses-store-ttl", type=float, help="Seconds a stored response is kept (default 3600).")
    p.add_argument(
        "--no-metrics", dest="metrics", action="store_false", help="No request metrics (process metrics stay)."
    )
    _media_options(p)


def _media_options(p: Any) -> None:
    p.add_argument(
        "--allowed-media-hosts", help="Comma-separated hosts, IPs or CIDR networks media may come from even if private."
    )
    p.add_argument("--allow-private-media", action="store_true", help="Fetch media from private/loopback addresses.")
    p.add_argument("--allowed-local-media-path", help="Allow file:// media URLs below this directory (off by default).")
    p.add_argument("--media-fetch-timeout", type=float, help="Seconds one media fetch may take (default 10).")
    p.add_argument("--max-media-bytes", type=int, help="Encoded media bytes per request (default 32 MiB).")
    p.add_argument("--max-media-per-request", type=int, help="Media content parts per request (default 16).")
    p.add_argument("--max-image-pixels", type=int, help="Pixels per image (default 25000000).")
    p.add_argument("--max-audio-seconds", type=float, help="Seconds of audio per request (default 1200).")
    p.add_argument("--max-video-frames", type=int, help="Most frames sampled from one video (default 64).")
    p.add_argument("--video-frames", type=int, help="Frames sampled from a video by default (default 8).")
    p.add_argument("--video-fps", type=float, help="Sample videos at this rate by default instead of a fixed count.")


def _chat_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="Chat in the terminal with hfserve or any OpenAI-compatible server.")
    p.add_argument("url", nargs="?", help="The server (default http://127.0.0.1:8000).")
    p.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="Generation settings, e.g. temperature=0.7.")
    p.add_argument("--model", "-m", help="The model to chat with (default: the first the server lists).")
    p.add_argument("--api-key", help="Bearer key (default $HFSERVE_API_KEY, then $OPENAI_API_KEY).")
    p.add_argument("--system", help="System prompt.")


def chat_options(args: dict[str, Any]) -> Any:
    """The chat's options from its arguments: a first positional ``key=value`` is a setting, not a URL."""
    from app.chat_cli.app import ChatOptions
    from app.chat_cli.client import DEFAULT_URL
    from app.chat_cli.session import is_assignment

    url, settings = args["url"], list(args["settings"])
    if url is not None and is_assignment(url):  # ``hfserve chat temperature=0``: no URL given
        url, settings = None, [url, *settings]
    return ChatOptions(url or DEFAULT_URL, args["model"], args["api_key"], args["system"], settings)


def chat(args: dict[str, Any]) -> None:
    from app.chat_cli.app import run_chat

    raise SystemExit(run_chat(chat_options(args)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfserve", description="OpenAI-compatible server for transformers models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    d = sub.add_parser("download", help="Download a model into the Hugging Face cache.")
    d.add_argument("model", help="org/name[@revision]")
    d.add_argument("--quiet", action="store_true", help="No progress bar.")
    sub.add_parser("models", help="List the generative models in the Hugging Face cache.")
    sub.add_parser("demo", help="Build the bundled tiny demo model into the HF cache (offline, idempotent).")
    _chat_parser(sub)
    return parser


def _load_app(settings_json: str) -> Any:
    """Runs in the Granian worker: rebuilds the settings and the app."""
    from app.engine.client import processes

    processes.prestart()  # the engine's imports, in the forkserver, while this worker imports the HTTP side
    from app.main import create_app
    from app.observability.logging import configure_logging

    settings = Settings.model_validate_json(settings_json)
    configure_logging(settings.log_level)
    app = create_app(settings, engine_log_setup=partial(configure_logging, settings.log_level))
    # Granian configures logging in the worker after loading the app; ours goes on top at startup.
    app.on_startup.insert(0, lambda: configure_logging(settings.log_level))
    return app


def check_port_free(address: str, port: int) -> None:
    """Exit with a clear message when another process listens on the port. Granian binds with SO_REUSEPORT,
    which would let a second server share the port (and its traffic) silently; a plain bind is refused."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed socket in TIME_WAIT is no owner
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise SystemExit(f"hfserve: cannot listen on {address}:{port}: {exc.strerror or exc}") from exc


def serve(settings: Settings) -> None:
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from app.drain import DrainingServer
    from app.observability.logging import configure_logging, granian_log_config

    configure_logging(settings.log_level)
    address = _LOOPBACK_NAMES.get(settings.host, settings.host)
    check_port_free(address, settings.port)
    server = DrainingServer(
        drain_grace=settings.drain_grace,
        target="app.main:create_app",
        address=address,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        log_level=LogLevels(settings.log_level),
        log_dictconfig=granian_log_config(settings.log_level),
    )
    server.serve(target_loader=partial(_load_app, settings.model_dump_json()), wrap_loader=False)


def download(model: str, quiet: bool) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    from tqdm import tqdm

    from app.engine.client.loader import DOWNLOAD_PATTERNS
    from app.errors import HfServeError
    from app.models.ids import parse_model_ref

    try:
        ref = parse_model_ref(model)
    except HfServeError as exc:
        raise SystemExit(f"hfserve: {exc.message}") from exc
    if ref.revision is None:
        raise SystemExit(f"hfserve: {model} is a local directory; nothing to download.")
    try:  # a plain tqdm class draws the byte progress bar on stderr even when it is not a terminal
        path = snapshot_download(
            ref.source, revision=ref.revision, allow_patterns=DOWNLOAD_PATTERNS, tqdm_class=None if quiet else tqdm
        )
    except RepositoryNotFoundError as exc:
        raise SystemExit(f"hfserve: no model `{ref.name}` on the Hub.") from exc
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise SystemExit(f"hfserve: could not download `{ref.name}`: {exc}") from exc
    print(path)


def list_models() -> None:
    from app.models.cache import scan_cache

    for cached in scan_cache():
        print(f"{cached.model_id}\t{cached.task or 'not served'}")


def demo() -> None:
    from app.demo.builder import ensure_demo_model

    for repo_id in ensure_demo_model():
        print(repo_id)


def _check_choices(settings: Settings) -> None:
    from app.serving.output import check_tool_parser

    check_tool_parser(settings.tool_call_parser)


def main(argv: Sequence[str] | None = None) -> None:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    if command == "serve":
        if "api_key" in args and not args["api_key"]:
            args.pop("api_key")
        try:
            settings = Settings(**args)
            _check_choices(settings)
        except (ValidationError, SettingsError, ValueError) as exc:
            print(f"hfserve: invalid option: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        serve(settings)
    elif command == "download":
        download(args["model"], args["quiet"])
    elif command == "models":
        list_models()
    elif command == "demo":
        demo()
    elif command == "chat":
        chat(args)


if __name__ == "__main__":
    main()
