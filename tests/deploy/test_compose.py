"""docker-compose.yml: its resolved configuration, and the CPU stack brought up and down for real.

The stack test runs the quickstart a user without a GPU follows, with the image built from this
repository: ``run --rm hfserve-cpu demo`` builds the demo model into the named cache volume, ``up -d``
starts the server, Docker's healthcheck (wired to /ready) turns healthy, a chat completion is answered,
and ``down -v`` removes it all. To keep all traffic on 127.0.0.1, the stack runs from the resolved
configuration of docker-compose.yml with one change: the CPU service uses the host network (which
excludes published ports) and binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.demo.canned_chats import CAPITAL_ANSWER
from tests.support.image_build import BuiltImage
from tests.support.models import CHAT_MODEL_ID
from tests.support.server import ROOT, free_port

COMPOSE_FILE = ROOT / "docker-compose.yml"
pytestmark = pytest.mark.timeout(900)


def compose_command() -> list[str]:
    if path := shutil.which("docker-compose"):
        return [path]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    pytest.skip("neither docker-compose nor the docker compose plugin is installed (scripts/deploy-tools.sh)")


def compose(
    *args: str, env: dict[str, str], file: Path = COMPOSE_FILE, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*compose_command(), "-f", str(file), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def resolved(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    flags = [item for profile in profiles for item in ("--profile", profile)]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("HFSERVE_", "HF_", "OTEL_"))}
    return yaml.safe_load(compose(*flags, "config", env={**base_env, **(env or {})}).stdout)


def _ports(service: dict[str, Any]) -> list[str]:
    """``host_ip:published:target`` whether compose v1 (strings) or v2 (mappings) resolved them."""
    return [
        port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}:{port['target']}"
        for port in service.get("ports", [])
    ]


def _volumes(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> source, from v1's ``source:target[:mode]`` strings or v2's mappings."""
    pairs = (v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"]) for v in service["volumes"])
    return {target: source for source, target in pairs}


def test_gpu_service_is_the_default() -> None:
    services = resolved()["services"]
    gpu = services["hfserve"]
    assert "profiles" not in gpu  # `docker compose up` starts it
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert devices[0]["count"] in ("all", -1)  # v2 writes "all" as -1
    assert gpu["environment"]["HFSERVE_MODEL"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert gpu["restart"] == "unless-stopped"
    assert _volumes(gpu)["/data"] == "hf-cache"
    assert gpu["healthcheck"]["test"] == ["CMD", "python", "/usr/local/lib/hfserve/healthcheck.py", "/ready"]
    assert [p.removesuffix("/tcp") for p in _ports(gpu)] == ["127.0.0.1:8000:8000"]
    assert services["hfserve-cpu"]["profiles"] == ["cpu"] and services["otel-collector"]["profiles"] == ["otel"]


def test_cpu_service_has_no_gpu_and_env_flows_through() -> None:
    env = {"HFSERVE_MODEL": "org/other", "HFSERVE_API_KEY": "k1,k2", "HF_TOKEN": "hf_x", "OTEL_SDK_DISABLED": "false"}
    cpu = resolved("cpu", env=env)["services"]["hfserve-cpu"]
    assert "deploy" not in cpu
    assert cpu["environment"]["HFSERVE_DEVICE"] == "cpu"
    assert cpu["build"]["args"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    for name, value in env.items():
        assert cpu["environment"][name] == value
    assert cpu["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_otel_profile_mounts_the_collector_config() -> None:
    collector = resolved("otel")["services"]["otel-collector"]
    config = yaml.safe_load((ROOT / _volumes(collector)["/etc/otelcol/config.yaml"]).read_text())
    assert set(config["service"]["pipelines"]) == {"traces", "metrics", "logs"}
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


class Stack:
    def __init__(self, file: Path, env: dict[str, str], port: int) -> None:
        self.file, self.env, self.port = file, env, port
        self.project = env["COMPOSE_PROJECT_NAME"]

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        return compose("--profile", "cpu", *args, env=self.env, file=self.file)


@pytest.fixture
def stack(hfserve_image: BuiltImage, tmp_path: Path) -> Iterator[Stack]:
    """docker-compose.yml resolved with the test image and tiny model, its CPU service moved to loopback."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HFSERVE_", "HF_", "OTEL_"))}
    env.update(COMPOSE_PROJECT_NAME=f"hfserve-test-{os.getpid()}")
    config = resolved("cpu", env={"HFSERVE_CPU_IMAGE": hfserve_image.tag, "HFSERVE_MODEL": CHAT_MODEL_ID,
                                  "HF_HUB_OFFLINE": "1"})  # fmt: skip
    service = config["services"]["hfserve-cpu"]
    assert service.pop("ports")  # the one change: host network, loopback address, free port
    service.pop("networks", None)  # compose v2 names the default network explicitly
    service["network_mode"] = "host"
    service["environment"].update(HFSERVE_HOST="127.0.0.1", HFSERVE_PORT=str(port))
    file = tmp_path / "docker-compose.loopback.yml"
    file.write_text(yaml.safe_dump(config))
    stack = Stack(file, env, port)
    try:
        yield stack
    finally:
        subprocess.run(
            [*compose_command(), "-f", str(file), "--profile", "cpu", "down", "-v", "--timeout", "30"],
            cwd=ROOT, env=env, capture_output=True, timeout=120,
        )  # fmt: skip


def _health(docker_client: Any, project: str) -> tuple[Any, str]:
    containers = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})
    assert len(containers) == 1, containers
    container = containers[0]
    return container, container.attrs["State"].get("Health", {}).get("Status", "none")


def test_cpu_stack_up_demo_model_and_down(stack: Stack, docker_client: Any) -> None:
    project = stack.project
    start = time.monotonic()
    built = stack.compose("run", "--rm", "--no-deps", "hfserve-cpu", "demo")
    assert CHAT_MODEL_ID in built.stdout
    stack.compose("up", "-d", "--no-build", "hfserve-cpu")

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        container, status = _health(docker_client, project)
        if status in ("healthy", "unhealthy") or container.status == "exited":
            break
        time.sleep(1)
    assert status == "healthy", container.logs()[-4000:].decode(errors="replace")
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == f"{project}_hf-cache"

    url = f"http://127.0.0.1:{stack.port}"
    assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0,  # the exact answer is asserted: greedy, not a sample at the default temperature 1
            "chat_template_kwargs": {"enable_thinking": False},
        },
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == CAPITAL_ANSWER
    up_seconds = time.monotonic() - start

    stack.compose("down", "-v", "--timeout", "30")
    assert docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}) == []
    assert [v for v in docker_client.volumes.list() if v.name.startswith(project)] == []
    print(f"compose: demo model built and stack healthy and answering in {up_seconds:.1f} s")
