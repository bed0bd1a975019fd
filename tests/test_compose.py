"""The compose files as `docker compose config` reads them: production has no emulator, no debug, secrets
only from the environment and one published port; development is bound to 127.0.0.1.

Uses Docker Compose v2 (`docker compose`) where installed, else Debian's docker-compose, which `make test`
installs (no Docker daemon is needed to read a file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-for-this-test-only-0123456789",
    "DJANGO_ALLOWED_HOSTS": "malaria.lab.example",
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "FIREBASE_PROJECT_ID": "lab-malaria-prod",
    "FIREBASE_API_KEY": "public-web-key",
}


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("Neither `docker compose` nor `docker-compose` is installed: `make test` installs docker-compose")


def config(file: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*compose_command(), "-f", file, "config"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def production(tmp_path) -> dict:
    credentials = tmp_path / "service-account.json"
    credentials.write_text("{}")
    result = config("docker-compose.yml", {**PRODUCTION_ENV, "FIREBASE_CREDENTIALS_PATH": str(credentials)})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def published(service: dict) -> list[str]:
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):  # compose v2's long form
            ports.append(f"{port.get('host_ip', '0.0.0.0')}:{port['published']}:{port['target']}")
        else:
            ports.append(str(port).removesuffix("/tcp"))
    return ports


def test_production_has_no_emulator_no_debug_and_only_the_web_port(production):
    services = production["services"]
    assert set(services) == {"db", "redis", "web", "worker", "notifier", "scheduler"}
    for name, service in services.items():
        environment = service.get("environment", {})
        assert not any("EMULATOR" in key for key in environment), name
        if name in ("web", "worker", "notifier", "scheduler"):
            assert environment["DJANGO_DEBUG"] == "0"
            assert environment["FIREBASE_CREDENTIALS_FILE"] == "/run/secrets/firebase_credentials"
            assert "redis-secret@redis" in environment["REDIS_URL"]
            assert "-B" not in str(service["command"]).split(), "the sweep runs once, in the scheduler"
    assert {name: published(s) for name, s in services.items() if published(s)} == {"web": ["127.0.0.1:8000:8000"]}
    assert "--requirepass" in str(services["redis"]["command"])
    assert "health/ready" in str(services["web"]["healthcheck"]["test"])
    assert "inspect ping" in str(services["worker"]["healthcheck"]["test"])
    # Webhook deliveries have workers of their own: a slow receiver never holds a cells worker's process.
    assert str(services["notifier"]["command"]).split()[3:7] == ["worker", "-Q", "notifications", "-n"]
    assert "-Q" not in str(services["worker"]["command"]).split()


@pytest.mark.parametrize("missing", [*PRODUCTION_ENV, "FIREBASE_CREDENTIALS_PATH"])
def test_production_refuses_to_start_without_each_secret(tmp_path, missing):
    credentials = tmp_path / "service-account.json"
    credentials.write_text("{}")
    env = {**PRODUCTION_ENV, "FIREBASE_CREDENTIALS_PATH": str(credentials)}
    del env[missing]
    result = config("docker-compose.yml", env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_development_binds_every_port_to_localhost_and_says_what_it_is():
    result = config("docker-compose.dev.yml", {})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    ports = [port for service in services.values() for port in published(service)]
    assert sorted(ports) == ["127.0.0.1:8000:8000", "127.0.0.1:9099:9099"]
    assert services["web"]["environment"]["FIREBASE_AUTH_EMULATOR_TRUSTED"] == "1"
    assert (ROOT / "docker-compose.dev.yml").read_text().startswith("# DEVELOPMENT ONLY")
