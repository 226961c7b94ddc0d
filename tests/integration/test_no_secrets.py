"""No credential in any answer or log line, with the dependencies down.

The service, the trainer and the CLI run as real processes (forked from the worker's preloaded
interpreter, ``tests/forked.py``) with a user and password in both URLs (the price store's and MLflow's),
while the store refuses connections and MLflow accepts them but never answers (a frozen server). Every
answer of every route, every process's whole log and every CLI command's output are then scanned: no user
name and no password anywhere, and no address of a dependency in an answer (an answer says which
dependency failed and why, not where it lives).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import CliProcess, free_port, silent_server, wait_until

pytestmark = pytest.mark.integration

STORE_USER, STORE_PASSWORD = "store-operator-u7", "store-pw-Q9@x:y"
MLFLOW_USER, MLFLOW_PASSWORD = "mlflow-operator-k3", "mlflow-pw-Z1@v:w"
SECRETS = (STORE_USER, STORE_PASSWORD, MLFLOW_USER, MLFLOW_PASSWORD, "store-pw-Q9", "mlflow-pw-Z1")
CONTROL_KEY = "no-secrets-control-key-5d1e"
STORE_HOST = "127.0.0.3"
"""A loopback address nothing else in the suite uses: if it shows in an answer, the store's address leaked."""


def _closed_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def credentialed_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], tuple[str, ...]]]:
    """Settings with credentials in both URLs, the store refusing and MLflow frozen; and what an
    answer must not show (the credentials, the dependencies' ports and the store's address)."""
    store_port = _closed_port(STORE_HOST)
    with silent_server() as mlflow_port:
        env = {
            "BTCMLOPS_HOME": str(tmp_path / "home"),
            "BTCMLOPS_STORE__URL": (
                f"mysql+pymysql://{STORE_USER}:{STORE_PASSWORD.replace('@', '%40')}"
                f"@{STORE_HOST}:{store_port}/btcmlops"
            ),
            "BTCMLOPS_MLFLOW__TRACKING_URI": (
                f"http://{MLFLOW_USER}:{MLFLOW_PASSWORD.replace('@', '%40')}@127.0.0.1:{mlflow_port}"
            ),
            "BTCMLOPS_SERVE__CONTROL_KEY": CONTROL_KEY,
            "BTCMLOPS_SERVE__POLL_INTERVAL_S": "0.5",
            "BTCMLOPS_SERVE__REGISTRY_TIMEOUT_S": "1",
            "BTCMLOPS_SERVE__STORE_TIMEOUT_S": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "2",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        }
        yield env, (*SECRETS, str(store_port), str(mlflow_port), STORE_HOST)


def _leaks(text: str, forbidden: tuple[str, ...]) -> list[str]:
    """What of ``forbidden`` the text shows. A port counts only as a whole number: /metrics is full of
    timestamps and durations, and 42287 inside 1.7966334228 is not an address (a CI run failed on it)."""
    lowered = text.lower()
    return [
        item
        for item in forbidden
        if (re.search(rf"(?<![\d.]){item}(?!\d)", lowered) if item.isdigit() else item.lower() in lowered)
    ]


def _every_answer(url: str) -> dict[str, httpx.Response]:
    """One request to every operation of the service's own OpenAPI document, and a few more."""
    answers: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        schema = client.get("/openapi.json").json()
        keyed = {"X-API-Key": CONTROL_KEY}
        bodies = {
            "/predict": {"timestamp": "2024-03-05T14:00:00Z"},
            "/predict/batch": {"timestamps": ["2024-03-05T14:00:00Z"]},
            "/model/promote": {"version": 2, "reason": "a test of what errors show"},
            "/model/rollback": {"reason": "a test of what errors show"},
            "/clock": {"action": "pause"},
        }
        for path, operations in schema["paths"].items():
            for method in operations:
                if "{" in path:
                    continue
                body = bodies.get(path) if method == "post" else None
                answers[f"{method.upper()} {path}"] = client.request(
                    method, path, json=body, headers=keyed if method == "post" else None
                )
        answers["GET /predictions?start=2024-01-01T00:00:00Z"] = client.get(
            "/predictions", params={"start": "2024-01-01T00:00:00Z"}
        )
    return answers


def test_the_service_shows_no_credential_or_address_with_its_dependencies_down(
    credentialed_env: tuple[dict[str, str], tuple[str, ...]], tmp_path: Path
) -> None:
    env, forbidden_in_answers = credentialed_env
    port = free_port()
    service = CliProcess("serve", ["serve", "--port", str(port)], env, tmp_path, forked=True)
    service.start()
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_for_http(f"{url}/healthz", timeout_s=90)

        def both_failures_seen() -> bool:
            model = httpx.get(f"{url}/model", timeout=10).json()
            return model["store_error"] is not None and model["last_swap_error"] is not None

        wait_until(
            both_failures_seen, timeout_s=60, what="both dependencies seen down", on_timeout=service.log_tail
        )
        answers = _every_answer(url)
    finally:
        service.stop()

    assert len(answers) >= 15, sorted(answers)
    for name, answer in answers.items():
        shown = f"{answer.status_code} {dict(answer.headers)} {answer.text}"
        assert not _leaks(shown, forbidden_in_answers), f"{name} answered {shown[:2000]}"
    model = answers["GET /model"].json()
    # What failed and why is still said: a silent answer would pass the scan above.
    assert model["store_error"] == "ConnectionRefusedError: connection refused"
    assert model["last_swap_error"] == "TimeoutError: no answer in time", model
    promote = answers["POST /model/promote"]
    assert promote.status_code == 503
    assert promote.json()["detail"] == "model registry unreachable: TimeoutError: no answer in time"
    assert answers["GET /model/history"].json()["detail"] == (
        "price store unreachable: ConnectionRefusedError: connection refused"
    )
    log = service.log_path.read_text(errors="replace")
    assert not _leaks(log, SECRETS), log[-3000:]
    assert "registry check failed" in log  # its retry lines are there, and say why
    assert "price store round failed" in log


def test_the_trainer_and_the_cli_print_no_credential_with_the_dependencies_down(
    credentialed_env: tuple[dict[str, str], tuple[str, ...]], tmp_path: Path
) -> None:
    env, _ = credentialed_env
    on_sqlite = {**env, "BTCMLOPS_STORE__URL": f"sqlite:///{tmp_path / 'prices.db'}"}
    # The store up: on to MLflow.
    trainer = CliProcess("trainer", ["trainer"], on_sqlite, tmp_path, forked=True)
    trainer.start()
    try:
        wait_until(
            lambda: trainer.log_tail().count("opening the MLflow registry at http://***@127.0.0.1") >= 2,
            timeout_s=60,
            what="two redacted retry lines from the trainer",
            on_timeout=trainer.log_tail,
        )
    finally:
        trainer.stop()
    trainer_log = trainer.log_path.read_text(errors="replace")
    assert not _leaks(trainer_log, SECRETS), trainer_log[-3000:]

    # The CLI with the store down, then with a store up (SQLite) and MLflow frozen.
    commands = [
        (env, ["registry", "check"]),
        (env, ["clock", "show"]),
        (env, ["model", "history"]),
        (env, ["health", env["BTCMLOPS_MLFLOW__TRACKING_URI"]]),
        (on_sqlite, ["registry", "check"]),
        (on_sqlite, ["model", "promote", "2", "--reason", "a test of what errors show"]),
        (on_sqlite, ["model", "rollback", "--reason", "a test of what errors show"]),
    ]
    # All at once: each mostly waits for a dependency's timeout, so the test waits for the slowest only.
    # Forked from the worker's preloaded interpreter: what is scanned is what a command prints once it
    # runs (nothing reads a setting at import), not what importing MLflow and LightGBM prints.
    started = [
        (args, CliProcess(f"cli-{number}", args, command_env, tmp_path, forked=True).start())
        for number, (command_env, args) in enumerate(commands)
    ]
    done = []
    try:
        for args, command in started:
            assert command.process is not None
            returncode = command.process.wait(timeout=120)
            done.append((args, returncode, command.log_path.read_text(errors="replace")))
    finally:
        for _, command in started:
            command.stop()
    for args, returncode, output in done:
        assert returncode != 0, f"btcmlops {' '.join(args)} succeeded with a dependency down: {output}"
        assert not _leaks(output, SECRETS), f"btcmlops {' '.join(args)}:\n{output}"
        assert output.strip(), f"btcmlops {' '.join(args)} failed without a word"
