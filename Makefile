# btcmlops tasks. `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.8
PYTHON ?= python3.11
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
# Compile site-packages to bytecode at install: imports then cost seconds less in every process
# (this machine sets PYTHONDONTWRITEBYTECODE, so nothing would ever be cached otherwise).
export UV_COMPILE_BYTECODE := 1
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
RUN := $(UV) run --frozen
# For tasks that depend on install, which has just synced .venv: a second sync would only check the
# 19,000 installed files' bytecode again (2 s).
RUN_SYNCED := $(UV) run --frozen --no-sync
# The first steps (demo, serve, stack) run on what the package needs, without the dev group (test,
# lint and browser tools, the xgboost extra): `uv run --no-dev` installs nothing more and, like
# `uv sync --inexact`, removes nothing a developer's `make install` put there.
RUN_APP := $(UV) run --frozen --no-dev
OUT ?= out/replay

# The make variables the "## " descriptions name (OUT): help passes their values to the awk script.
HELP_VARIABLES = $(sort $(shell sed -n 's/^[a-zA-Z_-]*:.*\#\# //p' $(MAKEFILE_LIST) | grep -o '[$$]([A-Za-z_][A-Za-z0-9_]*)' | tr -d '$$()'))

.PHONY: help
help: ## List the tasks
	@$(foreach v,$(HELP_VARIABLES),$(v)='$($(v))') awk -f scripts/make_help.awk $(MAKEFILE_LIST)

.PHONY: install
install: ## Install uv (if missing) and every dependency from the lock file into .venv
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen

.PHONY: install-run
install-run: ## Install uv (if missing) and what the replay and the services need (no dev tools) into .venv
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --no-dev --inexact

# Debian packages the tests need: a browser for the dashboard test, docker-compose to validate the
# compose file (`make test-compose` adds the engine and runs the file for real). promtool (Debian's
# prometheus package, installed without starting its server: scripts/install_promtool.sh) checks
# and unit-tests the alert rules.
SYSTEM_PACKAGES := chromium chromium-driver docker-compose

.PHONY: system-deps
system-deps: ## Install the Debian packages the tests need (chromium, docker-compose, prometheus's promtool); needs root
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@bash scripts/install_promtool.sh

.PHONY: demo
demo: install-run ## Replay 2023-2024 on the shipped candles (no servers) into $(OUT)
	$(RUN_APP) btcmlops simulate --out $(OUT)

# OpenMP's threads wait without spinning in the tests, as the image sets it (Dockerfile): on two cores
# shared by the workers, a spinning 2-thread XGBoost fit took 2.6-5.6 CPU-s where it takes 0.6.
test test-durations test-fast test-unit: export OMP_WAIT_POLICY := PASSIVE
# The tests and the processes they start cache the project's and the tests' bytecode (and pytest its
# rewritten test modules) even where the machine sets PYTHONDONTWRITEBYTECODE: otherwise each xdist
# worker spent 4 CPU-s more rewriting the same 360 modules on every run.
test test-durations test-fast test-unit: export PYTHONDONTWRITEBYTECODE :=

# Most integration tests wait on processes (servers starting, polls, outages), so xdist workers overlap
# them; tests that must share one worker are marked xdist_group. Each worker starts its own session
# servers (mlflow, S3); replays are made once per run. On 2 cores, 4 workers ended the run in 674 s
# where 3 took 808 s (docs/measurements.md). Override: make test TEST_WORKERS=6.
TEST_WORKERS ?= 4
.PHONY: test
test: install test-deps ## Run every test: unit, and integration against MariaDB, moto's S3 server and mlflow server
	$(RUN_SYNCED) pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25

# The workers get the longest tests first (tests/scheduling.py), by tests/durations.json: after tests are
# added or made much slower or faster, refresh it on a quiet machine and commit it.
.PHONY: test-durations
test-durations: install test-deps ## Run every test as make test does and write each one's seconds to tests/durations.json
	$(RUN_SYNCED) pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --record-durations

# The inner loop: no servers, no browser, SQLite only, the crash matrix cut at 3 of its boundaries and
# 5 fuzz cases per operation and mode instead of 64 (48 live); three xdist workers, so one's waits leave the
# two cores to the others (FAST_WORKERS=0: one process).
FAST_FUZZ_CASES ?= 5
FAST_WORKERS ?= 3
.PHONY: test-fast
test-fast: install ## The inner loop (under 2 min): every module's unit tests on SQLite, slow ones sampled or left out
	BTCMLOPS_FUZZ_CASES=$(FAST_FUZZ_CASES) $(RUN_SYNCED) pytest tests/unit -m "not slow and not mariadb and not integration and not browser" \
		-n $(FAST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=10

# As root, install what the tests need (system-deps); otherwise say, before any test runs, which tests
# will be skipped for want of it and the one command that enables them.
.PHONY: test-deps
test-deps:
	@if [ "$$(id -u)" = 0 ]; then 		$(MAKE) --no-print-directory system-deps; 	else 		missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); 		if [ -n "$$missing" ]; then 			echo "missing Debian packages:" $$missing; 			echo "  without chromium the browser tests (dashboard, MLflow UI) are skipped; without docker-compose, the compose file check"; 			echo "  enable them with: sudo make system-deps"; 		fi; 		command -v promtool >/dev/null || { echo "promtool missing: the alert rule checks are skipped"; echo "  enable them with: sudo make system-deps"; }; 		command -v npm >/dev/null || echo "npm missing: the Helm chart test cannot fetch helm (sudo apt-get install npm)"; 	fi

.PHONY: test-rules
test-rules: install ## The Prometheus rules (deploy/prometheus): promtool check rules and test rules, and their conventions
	$(RUN) pytest tests/unit/deploy/test_prometheus_rules.py

.PHONY: test-unit
test-unit: install ## Every unit test, the slow ones included (no integration marker)
	$(RUN_SYNCED) pytest -m "not integration"

.PHONY: test-compose
test-compose: install ## docker-compose.yml for real (root): build the images, up, a promotion, kill -9, down/up
	bash scripts/compose_images.sh
	$(RUN) pytest tests/compose -s

.PHONY: test-helm
test-helm: install ## Helm chart, offline: lint --strict, template 4 value sets, Kubernetes schemas, checkov
	$(RUN) python scripts/check_helm.py

.PHONY: lint
lint: install ## ruff (lint and format check) and mypy --strict
	$(RUN) ruff check src tests bench scripts
	$(RUN) ruff format --check src tests bench scripts
	$(RUN) mypy

.PHONY: format
format: install ## Format and auto-fix with ruff
	$(RUN) ruff format src tests bench scripts
	$(RUN) ruff check --fix src tests bench scripts

.PHONY: bench
bench: install ## Time the full replay (wall, training, MLflow share; served MAE vs naive)
	$(RUN) python bench/replay.py

.PHONY: bench-sweep
bench-sweep: install ## Time a two-combination sweep with the fits shared and not (wall, training, fits made)
	$(RUN) python bench/sweep.py

.PHONY: bench-growth
bench-growth: install ## Replay 2, 4, 6, 8, 10 generated years on processes (1, 2 workers) and dask: wall, peak RSS
	$(RUN) python bench/growth.py

.PHONY: bench-serve
bench-serve: install ## Serving benchmark with wrk (apt-get install wrk): vs mlflow models serve and a no-op ceiling
	$(RUN) python bench/serve.py

.PHONY: bench-live
bench-live: install ## How live the live stack's forecasts are at 3 and 48 sim h/s (hours missed, lag, live share)
	$(RUN) python bench/live.py

.PHONY: bench-reads
bench-reads: install ## /predict latency alone and beside 64 readers of 10,000-row pages (wrk), peak RSS
	$(RUN) python bench/reads.py

.PHONY: bench-shadow
bench-shadow: install ## /predict throughput and RSS with the challenger in shadow and without (wrk)
	$(RUN) python bench/shadow.py

.PHONY: bench-slow
bench-slow: install ## /healthz and /predict beside 2,000 idle and 200 byte-a-second connections; when they are closed
	$(RUN) python bench/slow_clients.py

.PHONY: bench-log
bench-log: install ## Cost of logging a forecast with and without the write-ahead file
	$(RUN) python bench/prediction_log.py

.PHONY: bench-cpu
bench-cpu: install ## The replay's training time alone and beside 3 busy processes, by LightGBM threads
	$(RUN) python bench/shared_cpu.py

.PHONY: bench-stack-fit
bench-stack-fit: install ## The trainer's fit time inside `make stack` against the same fit on a quiet machine
	$(RUN) python bench/stack_fit.py

.PHONY: bench-gpu
bench-gpu: install ## On a GPU machine: XGBoost fit time on CPU vs CUDA, and that their forecasts agree
	$(RUN) python bench/gpu_check.py

.PHONY: settings-docs
settings-docs: install ## Write docs/settings.md from the settings' descriptions (src/btcmlops/settings/)
	$(RUN) python scripts/settings_reference.py

.PHONY: serve
serve: install-run ## Serve the last replay's champion on BTCMLOPS_SERVE__PORT (8000) (run `make demo` first)
	$(RUN_APP) btcmlops serve --replay $(OUT)

.PHONY: stack
stack: install-run ## The live stack without Docker (supervisord): mlflow, api, trainer, feed, client, dashboard; restarts what dies
	mkdir -p .btcmlops/stack
	$(RUN_APP) --env-file stack.env supervisord -c deploy/stack/supervisord.conf

.PHONY: screenshot
screenshot: install ## With `make stack` running: save docs/dashboard.png (Debian's chromium; stack.env's ports)
	$(RUN) --env-file stack.env python scripts/dashboard_screenshot.py --wait-s 5

.PHONY: screenshot-mlflow
screenshot-mlflow: install ## With an MLflow UI at BTCMLOPS_DASHBOARD__MLFLOW_UI_URL (:5000): save docs/mlflow-model.png and -runs.png
	$(RUN) python scripts/mlflow_screenshot.py --experiment btc-next-hour --out-dir docs

.PHONY: clean
clean: ## Remove the replay output, the embedded stores and the cached tools (.cache: helm, checkov)
	rm -rf out .btcmlops .cache
