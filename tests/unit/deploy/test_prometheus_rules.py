"""deploy/prometheus: the recording and alert rules, checked and unit-tested by promtool.

``promtool check rules`` parses every rule and its PromQL; ``promtool test rules`` runs the unit tests
in deploy/prometheus/tests (input series for each alert, firing and not firing). promtool comes from
Debian's prometheus package (``make system-deps``); without it the two promtool tests are skipped, and
in CI they fail. The rest holds the rules to the house's conventions without promtool.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from btcmlops.features.drift import DRIFTED_PSI
from btcmlops.services.metrics import PipelineCollector, TrainerMetrics
from btcmlops.serving.drift import DriftCollector, DriftReading, LiveDrift
from btcmlops.serving.live_scores import LiveScores, LiveScoresCollector
from btcmlops.serving.metrics import ServiceMetrics
from btcmlops.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
MONITORING_DOC = ROOT / "docs" / "monitoring.md"

SEVERITIES = {"warning", "critical"}
RECORDING_NAME = re.compile(r"^[a-z_]*:[a-z0-9_]+:[a-z0-9_]+$")
METRIC = re.compile(r"(?<![\w:])btcmlops_[a-z0-9_]+(?![\w:])")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing: apt-get install prometheus (or `make system-deps`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *arguments], capture_output=True, text=True, cwd=ROOT, check=False, timeout=60
    )


def _rules() -> list[dict[str, Any]]:
    groups = [group for path in RULES for group in yaml.safe_load(path.read_text())["groups"]]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _exported_today() -> set[str]:
    """Every metric name the service, the feed and the trainer export: the service's registry's samples
    and the live scores' families (counters with ``_total``), with every optional family present (a
    clock, a model, hours scored), and the feed's and the trainer's families."""
    metrics = ServiceMetrics(registry_check_age=lambda: -1.0)
    names = {sample.name for family in metrics.registry.collect() for sample in family.samples}
    scores = LiveScores()
    scores.last_scored_hour = scores.last_forecast_hour = 480_000
    collector = LiveScoresCollector(
        scores,
        sim_now=lambda: datetime(2024, 1, 1, tzinfo=UTC),
        data_now=lambda: None,
        interval_level=lambda: 0.8,
    )
    drift = LiveDrift()
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    drift.reading = DriftReading(3, moment, moment, 1, moment, moment, 1, {"ret_1": 0.3})
    for family in [*collector.collect(), *DriftCollector(drift).collect()]:
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    trainer = CollectorRegistry()  # the feed's and the trainer's endpoints (services/metrics.py)
    TrainerMetrics(trainer)
    names |= {sample.name for family in trainer.collect() for sample in family.samples}
    pipeline = PipelineCollector(None, "btc-next-hour-close")  # type: ignore[arg-type]  # describe() reads no store
    names |= {family.name for family in pipeline.describe()}
    return names


def test_promtool_checks_every_rule() -> None:
    assert RULES
    result = _run("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    assert TESTS
    result = _run("test", "rules", *map(str, TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_every_alert_has_a_for_a_severity_and_annotations_naming_the_version() -> None:
    alerts = _alerts()
    assert set(alerts) == {
        "BtcmlopsChampionWorseThanNaive",
        "BtcmlopsCoverageOffLevel",
        "BtcmlopsPipelineStalled",
        "BtcmlopsSwapsFailing",
        "BtcmlopsStoreUnreachable",
        "BtcmlopsRegistryUnreachable",
        "BtcmlopsFeatureDrift",
        "BtcmlopsMonthNotDecided",
        "BtcmlopsTrainerLeaseNotRenewed",
        "BtcmlopsTargetDown",
    }
    for name, rule in alerts.items():
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        annotations = rule["annotations"]["summary"] + rule["annotations"]["description"]
        assert "model_version" in annotations or "btcmlops_served_model_version" in annotations, name


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [rule["record"] for rule in _rules() if "record" in rule]
    assert records
    for name in records:
        assert RECORDING_NAME.match(name), name


def test_rules_name_only_metrics_the_service_exports() -> None:
    texts = [rule["expr"] + str(rule.get("annotations")) for rule in _rules()]
    names = {name for text in texts for name in METRIC.findall(text)}
    assert names
    assert names <= _exported_today()


def test_the_metric_pattern_skips_recording_rule_names() -> None:
    text = "model_version_role_window:btcmlops_live_window_skill:ratio < 0 and btcmlops_sim_time_seconds"
    assert METRIC.findall(text) == ["btcmlops_sim_time_seconds"]


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == silent == set(_alerts())


def test_every_alert_has_its_section_in_the_docs() -> None:
    text = MONITORING_DOC.read_text()
    assert "## Alert rules" in text
    for name in _alerts():
        assert f"### {name}" in text, name


def test_the_drift_alert_fires_above_the_threshold_drift_reports() -> None:
    """One threshold: the alert's bound is the default of the setting GET /drift reads "drifted" by."""
    expr = _alerts()["BtcmlopsFeatureDrift"]["expr"]
    (bound,) = re.findall(r"btcmlops_feature_drift_psi\{[^}]*\}\)\s*>\s*([0-9.]+)", expr)
    assert float(bound) == ServeSettings().drift_psi_threshold == DRIFTED_PSI


CONFIG = PROMETHEUS / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"


def test_promtool_checks_the_compose_config_with_the_rules_it_mounts(tmp_path: Path) -> None:
    """The compose stack's config, its rule_files pointed at the repo's rules (as the mount does)."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = _run("check", "config", str(local))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES)} rule files found" in result.stdout, result.stdout


def test_the_compose_config_scrapes_each_service_where_compose_serves_its_metrics() -> None:
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    }
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    trainer = services["trainer"]["environment"]["BTCMLOPS_METRICS__TRAINER_PORT"]
    feed = services["feed"]["environment"]["BTCMLOPS_METRICS__FEED_PORT"]
    api = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert jobs == {
        "btcmlops-api": [f"api:{api}"],
        "btcmlops-trainer": [f"trainer:{trainer}"],
        "btcmlops-feed": [f"feed:{feed}"],
    }
    volumes = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in volumes
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert services["prometheus"]["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${PROMETHEUS_PORT}:9090"]
    # The alert on a scrape target names exactly these jobs.
    down = _alerts()["BtcmlopsTargetDown"]["expr"]
    assert all(job.removeprefix("btcmlops-") in down for job in jobs)
