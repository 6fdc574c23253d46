"""The ``hfserve`` command line: flags → Settings (through ``main``), and the small subcommands."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import cli
from app.cli import check_port_free
from app.settings import Settings
from tests.support.server import ROOT, run_server, server_env

pytestmark = pytest.mark.usefixtures("clean_env")  # no HFSERVE_* from the outer environment


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replaces the server start: ``main(["serve", ...])`` records the Settings it would serve with."""
    calls: list[Settings] = []
    monkeypatch.setattr(cli, "serve", calls.append)
    return calls


def serve_settings(served: list[Settings], *argv: str) -> Settings:
    cli.main(["serve", *argv])
    assert len(served) == 1
    return served.pop()


def serve_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["serve"]


def test_every_serve_flag_is_a_settings_field_and_back() -> None:
    dests = {a.dest for a in serve_parser()._actions if not isinstance(a, argparse._HelpAction)}
    assert dests == set(Settings.model_fields)


def test_no_flags_give_the_defaults(served: list[Settings]) -> None:
    assert serve_settings(served) == Settings()


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["org/name"], "model", "org/name"),
        (["org/name@v2"], "model", "org/name@v2"),
        (["--host", "0.0.0.0"], "host", "0.0.0.0"),
        (["--port", "9000"], "port", 9000),
        (["--continuous-batching"], "continuous_batching", True),
        (["--dtype", "bfloat16"], "dtype", "bfloat16"),
        (["--device", "cpu"], "device", "cpu"),
        (["--device", "cuda:0"], "device", "cuda:0"),
        (["--attn-implementation", "sdpa"], "attn_implementation", "sdpa"),
        (["--quantization", "bnb-4bit"], "quantization", "bnb-4bit"),
        (["--trust-remote-code"], "trust_remote_code", True),
        (["--model-timeout", "-1"], "model_timeout", -1),
        (["--model-timeout", "60"], "model_timeout", 60),
        (["--enable-cors"], "enable_cors", True),
        (
            ["--cors-origins", "http://a.example,http://b.example"],
            "cors_origins",
            ["http://a.example", "http://b.example"],
        ),
        (["--reasoning", "off"], "reasoning", "off"),
        (["--chat-template-kwargs", '{"enable_thinking": false}'], "chat_template_kwargs", {"enable_thinking": False}),
        (["--default-seed", "42"], "default_seed", 42),
        (["--log-level", "debug"], "log_level", "debug"),
        (["--api-key", "k1"], "api_key", ["k1"]),
        (["--api-key", "k1", "--api-key", "k2"], "api_key", ["k1", "k2"]),
        (["--max-queue", "3"], "max_queue", 3),
        (["--max-batch-size", "4"], "max_batch_size", 4),
        (["--max-model-len", "512"], "max_model_len", 512),
        (["--max-body-size", "4096"], "max_body_size", 4096),
        (["--no-metrics"], "metrics", False),
        (["--allowed-local-model-path", "/m"], "allowed_local_model_paths", ["/m"]),
        (
            ["--allowed-local-model-path", "/m", "--allowed-local-model-path", "/n"],
            "allowed_local_model_paths",
            ["/m", "/n"],
        ),
        (["--no-prefix-caching"], "prefix_caching", False),
        (["--gpu-memory-utilization", "0.5"], "gpu_memory_utilization", 0.5),
        (["--max-kv-tokens", "4096"], "max_kv_tokens", 4096),
        (["--cpu-prefill-ms", "80"], "cpu_prefill_ms", 80),
    ],
)
def test_flag_maps_to_setting(served: list[Settings], argv: list[str], field: str, expected: Any) -> None:
    settings = serve_settings(served, *argv)
    assert getattr(settings, field) == expected
    # Nothing else changes.
    defaults = Settings().model_dump()
    changed = {k for k, v in settings.model_dump().items() if v != defaults[k]}
    assert changed == {field}


def test_positional_model_with_flags(served: list[Settings], tmp_path: Path) -> None:
    s = serve_settings(served, str(tmp_path), "--port", "8123", "--model-timeout", "-1", "--api-key", "k")
    assert (s.model, s.port, s.model_timeout, s.api_key) == (str(tmp_path), 8123, -1, ["k"])


def test_flags_beat_env(served: list[Settings], clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_PORT", "9999")
    clean_env.setenv("HFSERVE_API_KEY", "env-key")
    clean_env.setenv("HFSERVE_MODEL", "org/from-env")
    s = serve_settings(served, "org/from-flag", "--port", "8001", "--api-key", "flag-key")
    assert (s.model, s.port, s.api_key) == ("org/from-flag", 8001, ["flag-key"])


def test_env_applies_when_flag_is_absent(served: list[Settings], clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_PORT", "9999")
    clean_env.setenv("HFSERVE_API_KEY", "a,b")
    s = serve_settings(served, "--host", "0.0.0.0")
    assert (s.host, s.port, s.api_key) == ("0.0.0.0", 9999, ["a", "b"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--model-timeout", "-5"],
        ["--device", "gpu"],
        ["--chat-template-kwargs", "[1, 2]"],
        ["--chat-template-kwargs", "{bad"],
        ["--max-queue", "0"],
    ],
)
def test_invalid_option_values_exit_2(
    served: list[Settings], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", *argv])
    assert exc.value.code == 2
    assert "invalid option" in capsys.readouterr().err
    assert served == []


@pytest.mark.parametrize("argv", [["--dtype", "int4"], ["--port", "abc"], ["--reasoning", "maybe"], ["--nope"]])
def test_argparse_rejects_bad_flags(served: list[Settings], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", *argv])
    assert exc.value.code == 2
    assert served == []


def test_invalid_env_value_exits_2(served: list[Settings], clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_PORT", "not-a-port")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve"])
    assert exc.value.code == 2


def test_invalid_json_in_env_exits_2(served: list[Settings], clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_CHAT_TEMPLATE_KWARGS", "{bad")
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve"])
    assert exc.value.code == 2


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


def test_settings_survive_the_trip_to_the_worker(served: list[Settings]) -> None:
    """serve() hands the worker ``model_dump_json()``; the worker rebuilds the same Settings."""
    s = serve_settings(
        served, "org/m", "--api-key", "k1", "--chat-template-kwargs", '{"x": [1]}', "--model-timeout", "-1"
    )
    assert Settings.model_validate_json(s.model_dump_json()) == s


def test_download_of_a_local_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["download", str(tmp_path)])
    assert "local directory" in str(exc.value.code)


def test_models_lists_the_cache(
    hf_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    cli.main(["models"])
    lines = set(capsys.readouterr().out.splitlines())
    assert "hfserve/tiny-chat\ttext-generation" in lines
    assert "hfserve/tiny-never-eos\ttext-generation" in lines
    assert "hfserve/tiny-encoder\tembed" in lines
    assert "hfserve/tiny-masked-lm\tnot served" in lines


def test_a_port_in_use_is_refused_at_start(hf_home: Path, logs_dir: Path) -> None:
    """Two servers must never share one port (SO_REUSEPORT would split its traffic between them)."""
    with run_server(hf_home, logs_dir, "--model-timeout", "-1") as first:
        second = subprocess.run(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(first.port)],
            cwd=ROOT,
            env=server_env(hf_home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr
        assert httpx.get(f"{first.url}/health", timeout=10).status_code == 200  # the first one is untouched


def test_the_port_check_refuses_any_listener_and_allows_a_free_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(SystemExit, match="cannot listen on"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # closed: free again
    check_port_free("127.0.0.1", 0)


@pytest.mark.parametrize(
    ("argv", "url", "settings"),
    [
        (["chat"], "http://127.0.0.1:8000", []),
        (["chat", "temperature=0", "max_tokens=5"], "http://127.0.0.1:8000", ["temperature=0", "max_tokens=5"]),
        (["chat", "localhost:9000", "top_p=0.5"], "localhost:9000", ["top_p=0.5"]),
    ],
)
def test_chat_takes_a_url_then_settings(argv: list[str], url: str, settings: list[str]) -> None:
    options = cli.chat_options(vars(cli.build_parser().parse_args([*argv, "-m", "org/m", "--system", "Be brief."])))
    assert (options.url, options.settings, options.model, options.system) == (url, settings, "org/m", "Be brief.")
