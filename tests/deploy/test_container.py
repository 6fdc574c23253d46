"""The image, built from this repository, serving the tiny chat model as a user would run it.

One container for the module: host networking on 127.0.0.1 and a free port, read-only root file
system (as the Helm chart runs it) with tmpfs for /tmp and the home folder, the model cache mounted at
the HF_HOME volume, configuration by ``HFSERVE_*`` only. It is stopped with SIGTERM at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from app.demo.canned_chats import CAPITAL_ANSWER
from tests.support.image_build import BuiltImage
from tests.support.models import CHAT_MODEL_ID
from tests.support.server import free_port

API_KEY = "container-test-key"
SECOND = 1_000_000_000  # the Docker API counts healthcheck intervals in nanoseconds
pytestmark = pytest.mark.timeout(900)


class Served:
    def __init__(self, container: Any, port: int) -> None:
        self.container, self.port = container, port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def wrapped(self) -> Any:
        return self.container.get_wrapped_container()

    def logs(self) -> str:
        out, err = self.container.get_logs()
        return (out + err).decode(errors="replace")[-6000:]

    def exec(self, *command: str) -> tuple[int, str]:
        code, output = self.wrapped.exec_run(list(command))
        return code, output.decode(errors="replace")

    def wait_ready(self, timeout: float = 240.0) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            self.wrapped.reload()
            if self.wrapped.status == "exited":
                raise RuntimeError(f"container exited:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"not ready after {timeout}s:\n{self.logs()}")


@pytest.fixture(scope="module")
def served(hfserve_image: BuiltImage, container_hf_home: Path) -> Iterator[Served]:
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = (
        DockerContainer(hfserve_image.tag)
        .with_envs(
            HFSERVE_MODEL=CHAT_MODEL_ID,
            HFSERVE_HOST="127.0.0.1",
            HFSERVE_PORT=str(port),
            HFSERVE_API_KEY=API_KEY,
            HFSERVE_MAX_BATCH_SIZE="8",
            HF_HUB_OFFLINE="1",
        )
        .with_volume_mapping(str(container_hf_home), "/data", mode="rw")
        .with_tmpfs_mount("/tmp")
        .with_tmpfs_mount("/home/hfserve", "uid=10001,gid=10001,mode=0700")  # the "size" is the options string
        .with_kwargs(
            network_mode="host",
            read_only=True,
            # the image's HEALTHCHECK command, checked every second instead of every 30 s
            healthcheck={"interval": SECOND, "timeout": 5 * SECOND, "retries": 3},
        )
    )
    container.start()
    served = Served(container, port)
    try:
        yield served
    finally:
        container.stop()


def test_image_metadata(hfserve_image: BuiltImage, docker_client: Any) -> None:
    config = docker_client.images.get(hfserve_image.tag).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "hfserve"]
    assert config["Cmd"] == ["serve"]
    assert config["StopSignal"] == "SIGTERM"
    assert "/data" in config["Volumes"]
    assert "8000/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HF_HOME"] == "/data"
    assert env["HFSERVE_HOST"] == "0.0.0.0"
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "/usr/local/lib/hfserve/healthcheck.py", "/health"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "hfserve"
    assert labels["org.opencontainers.image.version"] == "0.0.0-test"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_build_inputs_stay_out_of_the_final_image(hfserve_image: BuiltImage, docker_client: Any) -> None:
    """The torch wheel and the CA bundle are builder-stage only; the app is installed, not copied as source."""
    output = docker_client.containers.run(
        hfserve_image.tag,
        entrypoint=["/bin/sh", "-c"],
        command=[
            "ls /tmp; ls /src 2>&1; ls /usr/local/share/ca-certificates; python -c 'import app; print(app.__file__)'"
        ],
        network_mode="none",
        remove=True,
    ).decode()
    assert "torch-" not in output and "host-ca-bundle" not in output and "hfserve-build-extra" not in output
    assert "/opt/venv/lib/python3" in output and "site-packages/app/__init__.py" in output


def test_ready_then_models_and_streaming_chat(served: Served) -> None:
    served.wait_ready()
    client = OpenAI(base_url=f"{served.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    assert [model.id for model in client.models.list()] == [CHAT_MODEL_ID]  # a pinned server lists its model

    stream = client.chat.completions.create(
        model=CHAT_MODEL_ID,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,  # the exact answer is asserted: greedy, not a sample at the default temperature 1
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CAPITAL_ANSWER
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_api_key_from_env_is_enforced(served: Served) -> None:
    served.wait_ready()
    assert httpx.get(f"{served.url}/v1/models", timeout=10).status_code == 401
    wrong = httpx.get(f"{served.url}/v1/models", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert httpx.get(f"{served.url}/health", timeout=10).status_code == 200  # probes stay open


def test_runs_as_non_root_under_tini_with_ffmpeg(served: Served) -> None:
    served.wait_ready()
    assert served.exec("id", "-u") == (0, "10001\n")
    code, cmdline = served.exec("cat", "/proc/1/cmdline")
    assert code == 0 and cmdline.split("\0")[:3] == ["/usr/bin/tini", "--", "hfserve"]
    code, version = served.exec("ffmpeg", "-hide_banner", "-version")
    assert code == 0 and version.startswith("ffmpeg version")
    code, _ = served.exec("touch", "/opt/venv/written")
    assert code != 0  # the root file system is read-only, as in the Helm chart


def test_healthcheck_reports_healthy(served: Served) -> None:
    served.wait_ready()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        served.wrapped.reload()
        health = served.wrapped.attrs["State"]["Health"]
        if health["Status"] == "healthy":
            break
        time.sleep(0.5)
    assert health["Status"] == "healthy", health
    assert health["Log"][-1]["ExitCode"] == 0


def test_stored_responses_live_on_the_volume_across_a_restart(served: Served) -> None:
    """The image's response store is a SQLite file on /data: a restarted container still has the response."""
    served.wait_ready()
    store = httpx.get(f"{served.url}/ready", timeout=10).json()["responses_store"]
    assert store == {"url": "sqlite:////data/hfserve/responses.sqlite3", "status": "ok"}
    client = OpenAI(base_url=f"{served.url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    first = client.responses.create(
        model=CHAT_MODEL_ID,
        input="What is the capital of France?",
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}},
    )
    assert first.output_text == CAPITAL_ANSWER
    served.wrapped.restart(timeout=60)
    served.wait_ready()
    assert client.responses.retrieve(first.id).model_dump() == first.model_dump()


def test_sigterm_stops_gracefully(served: Served) -> None:
    """``docker stop`` sends SIGTERM through tini; the server drains and exits 0 well before the kill."""
    served.wait_ready()
    start = time.monotonic()
    served.wrapped.stop(timeout=60)
    elapsed = time.monotonic() - start
    served.wrapped.reload()
    state = served.wrapped.attrs["State"]
    assert state["ExitCode"] == 0, served.logs()
    assert elapsed < 30, f"took {elapsed:.1f}s to stop"
    assert not state["OOMKilled"]
