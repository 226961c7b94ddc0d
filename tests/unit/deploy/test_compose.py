"""docker-compose.yml, the Dockerfile and .env.example, checked statically (no Docker engine here).

``docker-compose config`` (Debian's docker-compose 1.29) validates the file and resolves its anchors
and variables; the resolved services are then held to the deployment's rules, and every command that
runs ``btcmlops`` is parsed by the real CLI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from btcmlops.cli import app
from btcmlops.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
ONE_SHOT = {"init"}
LONG_RUNNING = {"mysql", "minio", "mlflow", "feed", "trainer", "api", "client", "dashboard", "prometheus"}


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        message = "docker-compose is missing: apt-get install docker-compose (or `make system-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _config(*extra: str, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE), "--env-file", str(env_file), "config", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    result = _config()
    assert result.returncode == 0, result.stderr
    resolved: dict[str, dict[str, Any]] = yaml.safe_load(result.stdout)["services"]
    return resolved


def test_compose_file_is_valid() -> None:
    result = _config("-q")
    assert result.returncode == 0, result.stderr
    assert "name" not in yaml.safe_load(COMPOSE.read_text())  # compose 1.x rejects a top-level name


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == ONE_SHOT | LONG_RUNNING


def test_every_btcmlops_command_is_a_real_command(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: service["command"] for name, service in services.items() if "command" in service}
    ours = {name: command for name, command in commands.items() if command[0] == "btcmlops"}
    assert set(ours) == {"init", "feed", "trainer", "api", "client", "dashboard"}
    healthchecks = {
        f"{name} healthcheck": service["healthcheck"]["test"][1:]
        for name, service in services.items()
        if service.get("healthcheck", {}).get("test", [None, None])[1] == "btcmlops"
    }
    runner = CliRunner()
    for name, command in {**ours, **healthchecks}.items():
        # --help after the arguments: click parses every option given (an unknown one fails), then stops.
        result = runner.invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, f"{name}: {command}: {result.output}"


def test_long_running_services_have_healthchecks_and_dependents_wait_for_them(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert services[name]["restart"] == "unless-stopped", name
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert rule["condition"] == expected, f"{name} -> {dependency}"
    assert services["init"]["restart"] == "no"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert re.search(r"\d", tag), f"{name}: image {image!r} is not pinned to a version"
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert services["mysql"]["image"].startswith("mysql:8.")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v2.")
    # The base images are build arguments (a machine that cannot pull names local stand-ins); their
    # defaults, the images a real build uses, are pinned, and every FROM goes through one of them.
    defaults = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    assert set(defaults) == {"PYTHON_IMAGE", "UV_IMAGE"}, defaults
    for image in defaults.values():
        assert re.search(r":\d", image), image
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM"):
            assert re.match(r"FROM (\$\{(PYTHON_IMAGE|UV_IMAGE)\}|build) AS \w+$", line), line


def test_mlflow_server_runs_one_worker_behind_its_artifact_proxy_with_allowed_hosts(
    services: dict[str, dict[str, Any]],
) -> None:
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]

    def option(name: str) -> str:
        value: str = command[command.index(name) + 1]
        return value

    assert option("--workers") == "1"
    assert "--serve-artifacts" in command
    assert option("--artifacts-destination").startswith("s3://")
    assert option("--backend-store-uri").startswith("mysql+pymysql://")
    assert {"mlflow", "mlflow:5000", "localhost"} <= set(option("--allowed-hosts").split(","))
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # Clients reach artifacts through the server: no S3 credentials anywhere else but init.
    for name in ("feed", "trainer", "api", "dashboard"):
        assert not any("S3" in key or key.startswith("AWS_") for key in services[name]["environment"]), name


def test_settings_come_from_env_and_no_secret_is_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|API_KEY|CONTROL_KEY)\w*:", line):
            # From .env: interpolated, or passed through (a name without a value).
            assert re.search(r":\s*(\$\{\w+\})?\s*$", line), f"secret not from .env: {line.strip()}"
    referenced = set(re.findall(r"\$\{(\w+)\}", text))
    example = {
        line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^\w+=", line)
    }
    assert referenced <= example, f"missing from .env.example: {sorted(referenced - example)}"


def test_the_image_is_multi_stage_from_the_lock_file_and_runs_as_a_non_root_user() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    assert any("uv sync --frozen --no-dev" in line for line in lines)
    assert "libgomp1" in DOCKERFILE.read_text()  # LightGBM's OpenMP runtime
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user, "no USER line"
    assert user[-1] not in ("root", "0")


def _settings_of(group: str) -> set[str]:
    fields = Settings.model_fields[group].annotation.model_fields  # type: ignore[union-attr]
    return {f"BTCMLOPS_{group.upper()}__{name.upper()}" for name in fields}


# Set by the compose file itself: the api's address and port are its command's options.
SET_BY_COMPOSE = {"BTCMLOPS_SERVE__HOST", "BTCMLOPS_SERVE__PORT"}


def test_every_contest_model_and_serve_setting_set_in_dotenv_reaches_the_services(tmp_path: Path) -> None:
    everything = (_settings_of("contest") | _settings_of("model") | _settings_of("serve")) - SET_BY_COMPOSE
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text()
        + "BTCMLOPS_CONTEST__PROMOTION_RULE=significance\nBTCMLOPS_MODEL__NUM_BOOST_ROUND=500\n"
        + "BTCMLOPS_SERVE__MAX_BATCH=1000\n"
    )
    result = _config(env_file=env_file)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    for name in ("init", "feed", "trainer", "api", "client"):
        environment = resolved[name]["environment"]
        assert everything <= set(environment), f"{name} misses {sorted(everything - set(environment))}"
        assert environment["BTCMLOPS_CONTEST__PROMOTION_RULE"] == "significance", name
        assert environment["BTCMLOPS_MODEL__NUM_BOOST_ROUND"] == "500", name
        assert environment["BTCMLOPS_SERVE__MAX_BATCH"] == "1000", name
        # One not set anywhere stays unset in the container (not ""), so its default holds.
        assert environment["BTCMLOPS_CONTEST__ALPHA"] is None, name
        assert environment["BTCMLOPS_SERVE__CONTROL_KEY"] == "change-me-control-key", name


def test_the_control_keys_old_name_in_an_old_dotenv_still_reaches_the_api(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text().replace("BTCMLOPS_SERVE__CONTROL_KEY=", "BTCMLOPS_CLOCK__API_KEY=")
    )
    result = _config(env_file=env_file)
    assert result.returncode == 0, result.stderr
    api = yaml.safe_load(result.stdout)["services"]["api"]["environment"]
    assert api["BTCMLOPS_CLOCK__API_KEY"] == "change-me-control-key"
    assert api["BTCMLOPS_SERVE__CONTROL_KEY"] is None
