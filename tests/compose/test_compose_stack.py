"""docker-compose.yml run for real: `make test-compose` (root, Debian's Docker engine).

The project image is built from the project's Dockerfile and the compose file runs as shipped, with one
test-only override (``docker-compose.test-only.yml``) that swaps the two images this machine cannot pull
(MySQL, MinIO) for local stand-ins (MariaDB from Debian, ``rclone serve s3``); see
``scripts/compose_images.sh``, which `make test-compose` runs first. Secrets are random, demo mode is off
(the services' refusal of placeholder secrets stays armed), ports are published on loopback only.

One stack, the phases in order, as a user lives them: ``up`` until every service is healthy; the sim
clock fast through the first promotion and the api serving the new champion; the dashboard answering;
``kill -9`` of the mlflow and api containers, and the contest going on with nothing lost; ``down`` and
``up`` with the volumes keeping prices, registry, artifacts and the clock; then Prometheus's alerts:
a deliberately poor champion, promoted by hand through the API, fires ``BtcmlopsChampionWorseThanNaive``
and the hourly client stopped fires ``BtcmlopsPipelineStalled``, each within the window
docs/monitoring.md documents. Figures are printed (-s).
"""

from __future__ import annotations

import json
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from btcmlops.clock import month_end
from btcmlops.registry import ModelRegistry
from btcmlops.settings import MlflowSettings
from services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "tests" / "compose" / "docker-compose.test-only.yml")
DOCKER = "/usr/bin/docker"
IMAGES_FIGURES = ROOT / ".cache" / "compose" / "images.json"
IMAGE = "btcmlops:0.1.0"
MODEL = "btc-next-hour-close"
SPEED = 48
"""Sim hours per real second, as the live-stack test: the paced clock holds it to what the chain makes."""
HEALTHY_TIMEOUT_S = 420
PROMOTION_TIMEOUT_S = 1500
"""The first promotion is at the close of 2024-03 (three sim months, ~2,200 forecasts, paced)."""
NEXT_CONTEST_TIMEOUT_S = 900
REGISTRY_SOUND_TIMEOUT_S = 300
"""A trainer's lease (30 s) plus a month close with its fits, with room for two shared cores."""
TEST_TIMEOUT_S = 3600
"""The whole story, with room for a slow machine: ~15 minutes on two shared cores."""
LONG_RUNNING = ("mysql", "minio", "mlflow", "feed", "trainer", "api", "client", "dashboard", "prometheus")
PROMETHEUS_IMAGE = "prom/prometheus:v2.42.0"
"""docker-compose.yml's pinned image; here the stand-in from Debian's package (scripts/compose_images.sh)."""
SCRAPED_JOBS = {"btcmlops-api", "btcmlops-trainer", "btcmlops-feed"}
POOR_MODEL = {
    "BTCMLOPS_MODEL__LEARNING_RATE": "1.0",
    "BTCMLOPS_MODEL__NUM_LEAVES": "255",
    "BTCMLOPS_MODEL__MIN_DATA_IN_LEAF": "1",
    "BTCMLOPS_MODEL__LAMBDA_L2": "0",
    "BTCMLOPS_MODEL__BAGGING_FREQ": "0",
    "BTCMLOPS_MODEL__FEATURE_FRACTION": "1.0",
}
"""Settings that overfit every training hour: out of sample about 1.3 times naive's MAE, under vetting's 2."""
POOR_THROUGH = "2023-09"
"""An old, short window, closed long ago: the trainer never takes the version for one of its own."""
ALERT_SPEED = 1.0
"""Sim hours per second while the alerts are judged: the poor champion's 24 hours in 24 s, its month not
over. Slow, because the stalled rule's free-clock leg (a gap above 3 sim hours) reads the api's newest
live forecast, which lags the client by the prediction log's flush and a scoring round, about a second
or two: at 48 (or compose's 12) sim h/s that is more than 3 sim hours, and the alert fires at once."""
ALERT_ROOM = timedelta(hours=240)
"""Sim time the poor champion needs before its month's contest may replace it: its 24 scored hours, the
alert's `for:` and evaluation (at most 80 s, 80 sim hours at ``ALERT_SPEED``) and the promotion's own
seconds, with room. In CI the alerts' phase once began on June 30th: the poor version was promoted 22
sim hours before the month's contest, which then promoted the challenger over it after 19 of its hours,
and its 24 hours never came."""
WORSE_THAN_NAIVE_BOUND_S = 30 + 15 + 15 + 20
"""docs/monitoring.md: `for:` 30 s, plus up to one evaluation (15 s) and one scrape (15 s); 20 s slack
for this test's polls on two shared cores."""
STALLED_BOUND_S = 120 + 15 + 30 + 15 + 20
"""docs/monitoring.md, paced clock: sim time unchanged over 2 minutes of scrapes (up to one scrape
after it stopped), `for:` 30 s, one evaluation; 20 s slack."""
T = TypeVar("T")


@dataclass
class ComposeStack:
    """One compose project: its files, env file, published ports, and the figures it gathers."""

    project: str
    env_file: Path
    env: dict[str, str]
    figures: dict[str, Any] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 600) -> str:
        files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        command = ["docker-compose", "-p", self.project, *files, "--env-file", str(self.env_file), *args]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def inspect(self, service: str) -> dict[str, Any]:
        done = subprocess.run(
            [DOCKER, "inspect", self.container(service)], capture_output=True, text=True, check=True
        )
        state: dict[str, Any] = json.loads(done.stdout)[0]
        return state

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status", state["Status"]))

    def sql(self, query: str) -> str:
        """Run ``query`` in the database container (MySQL is not published) and return its output."""
        password = self.env["MYSQL_ROOT_PASSWORD"]
        out = self.compose(
            "exec", "-T", "mysql", "mariadb", "-uroot", f"-p{password}", "-N", "-B", "-e", query, timeout=60
        )
        return out.strip()

    def count(self, query: str) -> int:
        return int(self.sql(query))

    def api(self, path: str) -> Any:
        response = httpx.get(f"http://127.0.0.1:{self.env['API_PORT']}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def mlflow_versions(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"http://127.0.0.1:{self.env['MLFLOW_PORT']}/api/2.0/mlflow/model-versions/search",
            params={"filter": f"name='{MODEL}'", "max_results": 1000},
            timeout=10,
        )
        response.raise_for_status()
        versions: list[dict[str, Any]] = response.json().get("model_versions", [])
        return versions

    def prometheus(self, path: str) -> Any:
        """The ``data`` of a Prometheus HTTP API answer (published on loopback)."""
        response = httpx.get(f"http://127.0.0.1:{self.env['PROMETHEUS_PORT']}{path}", timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def control(self, path: str, body: dict[str, Any]) -> Any:
        """POST a change to the api with the control key."""
        response = httpx.post(
            f"http://127.0.0.1:{self.env['API_PORT']}{path}",
            json=body,
            headers={"X-API-Key": self.env["BTCMLOPS_SERVE__CONTROL_KEY"]},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def sim_now(self) -> datetime:
        return datetime.fromisoformat(self.api("/clock")["sim_now"])

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail=40", timeout=120)


def _wait(
    what: str, probe: Callable[[], T | None], timeout: float, stack: ComposeStack, every: float = 2
) -> T:
    """Poll ``probe`` until it returns a value (not None); fail with the services' logs past ``timeout``.

    A probe that raises (a service restarting) counts as no value yet; the last error is reported.
    """
    found: list[T] = []
    last_error: list[BaseException] = []

    def ready() -> bool:
        try:
            value = probe()
        except (httpx.HTTPError, AssertionError, ValueError, KeyError) as error:
            last_error[:] = [error]
            return False
        if value is not None:
            found.append(value)
        return bool(found)

    wait_until(
        ready,
        timeout_s=timeout,
        what=what,
        on_timeout=lambda: f"last error: {last_error[0] if last_error else None!r}\n{stack.logs()}",
        every_s=every,
    )
    return found[0]


def _env(project: str) -> dict[str, str]:
    """The .env a careful operator writes: every secret random, demo mode off, loopback ports."""
    return {
        "MYSQL_ROOT_PASSWORD": secrets.token_hex(12),
        "MYSQL_USER": "btcmlops",
        "MYSQL_PASSWORD": secrets.token_hex(12),
        "PRICES_DATABASE": "prices",
        "MLFLOW_DATABASE": "mlflow",
        "MINIO_ROOT_USER": "btcmlops",
        "MINIO_ROOT_PASSWORD": secrets.token_hex(12),
        "ARTIFACT_BUCKET": "mlflow",
        "BTCMLOPS_CLOCK__START": "2023-12-31T00:00:00Z",
        "BTCMLOPS_CLOCK__SPEED": str(SPEED),
        "BTCMLOPS_SERVE__CONTROL_KEY": secrets.token_hex(16),
        "BTCMLOPS_CONTEST__MARGIN": "0",
        "BTCMLOPS_DEMO": "false",
        "BIND_ADDRESS": "127.0.0.1",
        "ADMIN_BIND_ADDRESS": "127.0.0.1",
        "API_PORT": str(free_port()),
        "DASHBOARD_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
        "MINIO_CONSOLE_PORT": str(free_port()),
        "PROMETHEUS_PORT": str(free_port()),
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    if shutil.which("docker-compose") is None or not Path(DOCKER).exists():
        pytest.fail("docker-compose or Debian's docker client is missing: run `make test-compose` (as root)")
    for image in (IMAGE, "btcmlops-local/mariadb:10.11", "btcmlops-local/s3:rclone-1.75.2", PROMETHEUS_IMAGE):
        found = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, check=False)
        assert found.returncode == 0, f"image {image} missing: `make test-compose` builds it first"
    project = f"btcmlopsci{secrets.token_hex(3)}"
    env = _env(project)
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    compose_stack = ComposeStack(project, env_file, env)
    try:
        yield compose_stack
    finally:
        print(f"\ncompose figures: {json.dumps(compose_stack.figures, indent=2)}")
        compose_stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=300)


def _all_healthy(stack: ComposeStack) -> bool | None:
    init = stack.inspect("init")["State"]
    if init["Status"] == "exited" and init["ExitCode"] != 0:
        pytest.fail(f"init failed:\n{stack.compose('logs', '--no-color', 'init')}")
    return all(stack.health(service) == "healthy" for service in LONG_RUNNING) or None


def _up_and_healthy(stack: ComposeStack, phase: str) -> None:
    started = time.monotonic()
    stack.compose("up", "--detach", "--no-build", timeout=HEALTHY_TIMEOUT_S)
    _wait(f"{phase}: every service healthy", lambda: _all_healthy(stack), HEALTHY_TIMEOUT_S, stack, every=1)
    stack.figures[f"{phase}_up_to_all_healthy_s"] = round(time.monotonic() - started, 1)


def _decisions(stack: ComposeStack) -> list[dict[str, Any]]:
    decisions: list[dict[str, Any]] = stack.api("/decisions")
    return decisions


def _served_version(stack: ComposeStack) -> int | None:
    version = stack.api("/model")["version"]
    return int(version) if version is not None else None


def _hours_without_forecast(stack: ComposeStack) -> tuple[int, int]:
    """Hours from the first forecast to the last the client had to ask, and how many have none."""
    first, last = stack.sql("SELECT MIN(timestamp), MAX(timestamp) FROM prices.prediction_log").split("\t")
    expected = stack.count(f"SELECT TIMESTAMPDIFF(HOUR, '{first}', '{last}') + 1")
    logged = stack.count(
        "SELECT COUNT(DISTINCT timestamp) FROM prices.prediction_log"
        f" WHERE timestamp BETWEEN '{first}' AND '{last}'"
    )
    return expected, expected - logged


def _registry_sound(stack: ComposeStack) -> None:
    """``registry check`` passes once the trainer has finished what it has in hand.

    A month close in flight is pending in the journal until it is done, and one cut off by ``down``
    is finished by the next trainer only once the dead one's lease has expired (``lease_ttl_s``) and
    the month's challenger is refit: so poll, and fail with the last ``check`` output past the bound.
    """

    def sound() -> str:
        out = stack.compose("exec", "-T", "trainer", "btcmlops", "registry", "check", timeout=120)
        assert "sound" in out, out
        return out

    _wait("the registry sound (no change pending)", sound, REGISTRY_SOUND_TIMEOUT_S, stack, every=5)


@pytest.mark.compose
@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_compose_stack_promotes_survives_restarts_and_keeps_its_volumes(stack: ComposeStack) -> None:
    if IMAGES_FIGURES.exists():
        stack.figures["image"] = json.loads(IMAGES_FIGURES.read_text())
    up_at = time.monotonic()
    _up_and_healthy(stack, "first")
    _wait("Prometheus scraping the api, the trainer and the feed", lambda: _scraped(stack), 120, stack)
    groups = {group["name"] for group in stack.prometheus("/api/v1/rules")["groups"]}
    assert {"btcmlops.recording", "btcmlops.alerts", "btcmlops.pipeline"} <= groups, groups

    # The clock runs through the first promotion; the api serves the new champion.
    promoted = _wait(
        "the first promotion",
        lambda: next((d for d in _decisions(stack) if d["promoted"]), None),
        PROMOTION_TIMEOUT_S,
        stack,
        every=5,
    )
    stack.figures["up_to_first_promotion_s"] = round(time.monotonic() - up_at, 1)
    stack.figures["first_promotion"] = f"v{promoted['challenger_version']} at {promoted['eval_end']}"
    _wait(
        "the api serving the promoted champion",
        lambda: _served_version(stack) == promoted["challenger_version"] or None,
        60,
        stack,
    )

    # The dashboard answers on its published (loopback) port, and draws from the api.
    dashboard = f"http://127.0.0.1:{stack.env['DASHBOARD_PORT']}"
    assert httpx.get(f"{dashboard}/_stcore/health", timeout=10).text == "ok"
    assert "<title>" in httpx.get(dashboard, timeout=10).text

    # kill -9 of MLflow and of the api: they come back, and nothing recorded is lost.
    decided = len(_decisions(stack))
    versions = {v["version"] for v in stack.mlflow_versions()}
    candles = stack.count("SELECT COUNT(*) FROM prices.candles")
    forecasts = stack.count("SELECT COUNT(*) FROM prices.prediction_log")
    stack.compose("kill", "-s", "SIGKILL", "mlflow", "api")
    stack.compose("start", "mlflow", "api")
    _wait("mlflow and api healthy again", lambda: _all_healthy(stack), HEALTHY_TIMEOUT_S, stack, every=1)
    assert {v["version"] for v in stack.mlflow_versions()} >= versions
    assert stack.count("SELECT COUNT(*) FROM prices.candles") >= candles
    assert stack.count("SELECT COUNT(*) FROM prices.prediction_log") >= forecasts

    # The contest goes on: the next month is decided, the registry is sound, the trainer never restarted.
    _wait(
        "the next contest after the restarts",
        lambda: len(_decisions(stack)) > decided or None,
        NEXT_CONTEST_TIMEOUT_S,
        stack,
        every=5,
    )
    _registry_sound(stack)
    assert stack.inspect("trainer")["RestartCount"] == 0, stack.compose("logs", "--no-color", "trainer")
    expected, missing = _hours_without_forecast(stack)
    stack.figures["hours_forecast_before_down"] = expected
    assert missing == 0, f"{missing} of {expected} hours have no logged forecast"

    # down and up: the volumes keep prices, the registry, the artifacts (the champion loads) and the clock.
    champion = _served_version(stack)
    versions = {v["version"] for v in stack.mlflow_versions()}
    candles = stack.count("SELECT COUNT(*) FROM prices.candles")
    forecasts = stack.count("SELECT COUNT(*) FROM prices.prediction_log")
    sim_before = stack.api("/clock")["sim_now"]
    live_fits = _live_fit_seconds(stack)
    stack.compose("down", "--timeout", "20", timeout=300)
    _compare_fit_times(stack, live_fits, _quiet_fit_seconds(stack))
    _up_and_healthy(stack, "second")
    assert {v["version"] for v in stack.mlflow_versions()} >= versions
    assert stack.count("SELECT COUNT(*) FROM prices.candles") >= candles
    assert stack.count("SELECT COUNT(*) FROM prices.prediction_log") >= forecasts
    assert stack.api("/clock")["sim_now"] >= sim_before
    _wait(
        "the champion loaded from the kept artifacts",
        lambda: (_served_version(stack) or 0) >= (champion or 1) or None,
        120,
        stack,
    )
    _registry_sound(stack)

    # Prometheus's alerts: a poor champion is worse than naive, a stopped client stalls the pipeline.
    _poor_champion_and_stopped_client_fire_their_alerts(stack)


def _fit_seconds(tracking_uri: str) -> dict[str, float]:
    names = MlflowSettings()  # the stack and the replay use the default experiment and model names
    return ModelRegistry(tracking_uri, names.experiment, names.registered_model, create=False).fit_seconds()


def _live_fit_seconds(stack: ComposeStack) -> dict[str, float]:
    """The trainer's fit times in the running stack (train_seconds of each training run in MLflow)."""
    fits = _fit_seconds(f"http://127.0.0.1:{stack.env['MLFLOW_PORT']}")
    assert fits, "no training run recorded train_seconds"
    return fits


def _quiet_fit_seconds(stack: ComposeStack) -> dict[str, float]:
    """The same fits on a quiet machine: the replay in a one-off container of the image, stack down."""
    with tempfile.TemporaryDirectory() as out:
        Path(out).chmod(0o777)
        replay = [DOCKER, "run", "--rm", "--network", "none", "-v", f"{out}:/out", IMAGE, "btcmlops"]
        subprocess.run(
            [*replay, "simulate", "--out", "/out"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        return _fit_seconds(f"sqlite:///{Path(out) / 'mlflow.db'}")


def _compare_fit_times(stack: ComposeStack, live: dict[str, float], quiet: dict[str, float]) -> None:
    """Each live fit against the same fit (same name: same window, same data) run quietly.

    Reported, not bounded: a speed target is met in a benchmark, not in a timed test on a shared
    machine (issue 12's "within 2x" is read off these figures and off bench/stack_fit.py).
    """
    ratios = {name: round(live[name] / quiet[name], 2) for name in live if name in quiet}
    assert ratios, f"no live fit matches a replay fit: {sorted(live)} vs {sorted(quiet)[:5]}"
    stack.figures["fit_seconds_live"] = {name: round(seconds, 2) for name, seconds in live.items()}
    stack.figures["fit_ratio_live_over_quiet"] = ratios
    median = statistics.median(ratios.values())
    stack.figures["fit_ratio_median"] = median


def _scraped(stack: ComposeStack) -> bool | None:
    """Every btcmlops job has a target and each answered its last scrape."""
    targets = stack.prometheus("/api/v1/targets")["activeTargets"]
    health = {target["labels"]["job"]: target["health"] for target in targets}
    return (set(health) >= SCRAPED_JOBS and all(health[job] == "up" for job in SCRAPED_JOBS)) or None


def _firing(stack: ComposeStack, alert: str, **labels: str) -> dict[str, Any] | None:
    """The alert ``alert`` with ``labels`` if Prometheus has it firing now (not pending)."""
    for found in stack.prometheus("/api/v1/alerts")["alerts"]:
        wanted = {"alertname": alert, **labels}
        if found["state"] == "firing" and all(found["labels"].get(k) == v for k, v in wanted.items()):
            return dict(found)
    return None


def _live_window(stack: ComposeStack, version: int) -> tuple[float, float, float]:
    """The api's 7-day live figures of ``version`` as champion: scored hours, MAE, naive's MAE."""
    response = httpx.get(f"http://127.0.0.1:{stack.env['API_PORT']}/metrics", timeout=10)
    response.raise_for_status()
    wanted = {"model_version": str(version), "role": "champion", "window": "7d"}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if all(sample.labels.get(key) == value for key, value in wanted.items()):
                values[sample.name] = sample.value
    return (
        values.get("btcmlops_live_window_scored_hours", 0.0),
        values.get("btcmlops_live_window_absolute_error_usdt", 0.0),
        values.get("btcmlops_live_window_naive_absolute_error_usdt", 0.0),
    )


def _promote(stack: ComposeStack, version: int, reason: str) -> bool | None:
    """Promote ``version`` by hand over the API; None while another change (a month close) is in flight."""
    response = httpx.post(
        f"http://127.0.0.1:{stack.env['API_PORT']}/model/promote",
        json={"version": version, "reason": reason},
        headers={"X-API-Key": stack.env["BTCMLOPS_SERVE__CONTROL_KEY"]},
        timeout=60,
    )
    if response.status_code == 409:
        return None
    assert response.status_code == 200, response.text
    return True


def _register_poor_model(stack: ComposeStack) -> int:
    """Train and register the deliberately poor version in a one-off container of the trainer."""
    settings = [arg for key, value in POOR_MODEL.items() for arg in ("-e", f"{key}={value}")]
    out = stack.compose(
        "run", "--rm", "--no-deps", "-T",
        "-v", f"{ROOT / 'tests' / 'compose'}:/probe:ro",
        *settings,
        "trainer", "python", "/probe/register_poor_model.py", POOR_THROUGH,
        timeout=600,
    )  # fmt: skip
    return int(out.strip().splitlines()[-1])


def _room_for_the_poor_champion(clock: dict[str, Any]) -> bool:
    """Whether the clock runs (no contest in flight) with ``ALERT_ROOM`` of its month left."""
    sim_now = datetime.fromisoformat(clock["sim_now"])
    return clock["state"] == "running" and month_end(sim_now) - sim_now >= ALERT_ROOM


def _poor_champion_and_stopped_client_fire_their_alerts(stack: ComposeStack) -> None:
    """Promote a poor version by hand; BtcmlopsChampionWorseThanNaive fires within its documented
    window of the moment the api's own figures meet its condition; then, with the client stopped at
    that moment, BtcmlopsPipelineStalled fires within its window of the stop."""
    started = time.monotonic()
    poor = _register_poor_model(stack)
    stack.figures["poor_model_registered_s"] = round(time.monotonic() - started, 1)
    stack.figures["stalled_firing_at_48_sim_h_per_s"] = _firing(stack, "BtcmlopsPipelineStalled") is not None
    stack.control("/clock", {"action": "speed", "speed": ALERT_SPEED})
    _wait(  # near a month's end: through its contest (the hold) into the next month
        "a month with room for the poor champion's day",
        lambda: _room_for_the_poor_champion(stack.api("/clock")) or None,
        600,
        stack,
        every=1,
    )
    _wait(
        "BtcmlopsPipelineStalled not firing at the slow speed, the client running",
        lambda: _firing(stack, "BtcmlopsPipelineStalled") is None or None,
        120,
        stack,
    )
    _wait(  # 409 while the trainer's month close is in flight: the change waits for it
        "the poor version promoted over POST /model/promote",
        lambda: _promote(stack, poor, "compose test: a deliberately poor model"),
        300,
        stack,
    )
    _wait(
        "the api serving the poor champion (it passes vetting)",
        lambda: _served_version(stack) == poor or None,
        120,
        stack,
        every=1,
    )
    served_at, served_sim = time.monotonic(), stack.sim_now()

    def worse_than_naive() -> bool | None:
        hours, mae, naive = _live_window(stack, poor)
        return (hours >= 24 and mae > naive) or None

    _wait("the poor champion's 24 live hours worse than naive", worse_than_naive, 300, stack, every=0.5)
    met_at, met_sim = time.monotonic(), stack.sim_now()
    assert _firing(stack, "BtcmlopsPipelineStalled") is None  # the stop below is what fires it
    stack.compose("stop", "--timeout", "10", "client")
    stopped_at, stopped_sim = time.monotonic(), stack.sim_now()
    alert = _wait(
        "BtcmlopsChampionWorseThanNaive firing",
        lambda: _firing(stack, "BtcmlopsChampionWorseThanNaive", model_version=str(poor)),
        WORSE_THAN_NAIVE_BOUND_S + 60,
        stack,
        every=1,
    )
    fired_at, fired_sim = time.monotonic(), stack.sim_now()
    stack.figures["worse_than_naive"] = {
        "version": poor,
        "skill_when_met": round(1 - _live_window(stack, poor)[1] / _live_window(stack, poor)[2], 4),
        "served_to_condition_sim_h": round((met_sim - served_sim).total_seconds() / 3600, 1),
        "served_to_condition_wall_s": round(met_at - served_at, 1),
        "condition_to_firing_wall_s": round(fired_at - met_at, 1),
        "served_to_firing_sim_h": round((fired_sim - served_sim).total_seconds() / 3600, 1),
        "served_to_firing_wall_s": round(fired_at - served_at, 1),
    }
    assert "worse than naive" in alert["annotations"]["summary"]
    relayed = stack.api("/alerts")  # what the dashboard's monitoring page shows, from the api
    assert relayed["configured"] is True, relayed
    assert any(
        item["name"] == "BtcmlopsChampionWorseThanNaive" and item["labels"].get("model_version") == str(poor)
        for item in relayed["alerts"]
    ), relayed
    assert fired_at - met_at <= WORSE_THAN_NAIVE_BOUND_S, stack.figures["worse_than_naive"]

    _wait(
        "BtcmlopsPipelineStalled firing",
        lambda: _firing(stack, "BtcmlopsPipelineStalled"),
        STALLED_BOUND_S + 60,
        stack,
        every=1,
    )
    stalled_at, stalled_sim = time.monotonic(), stack.sim_now()
    stack.figures["pipeline_stalled"] = {
        "stop_to_firing_wall_s": round(stalled_at - stopped_at, 1),
        "stop_to_firing_sim_h": round((stalled_sim - stopped_sim).total_seconds() / 3600, 2),
    }
    assert stalled_at - stopped_at <= STALLED_BOUND_S, stack.figures["pipeline_stalled"]
    stack.figures["alerts_phase_s"] = round(time.monotonic() - started, 1)
