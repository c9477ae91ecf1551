# Order-reporting suite: `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROCFILE ?= Procfile

.DEFAULT_GOAL := help

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip uv
	@$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -r requirements.lock
	@$(BIN)/uv pip install --python $(BIN)/python -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies (plain pip works too: see README)

lock: ## Re-resolve requirements.lock (dev tools and make run), requirements-runtime.lock (images) and requirements-bench.lock (make bench) from pyproject.toml
	@$(BIN)/uv pip compile pyproject.toml --extra dev --extra run -o requirements.lock --python 3.11 --no-header --annotation-style line -q
	@$(BIN)/uv pip compile pyproject.toml -o requirements-runtime.lock --python 3.11 --no-header --annotation-style line -q
	@$(BIN)/uv pip compile pyproject.toml --extra dev --extra run --extra bench -o requirements-bench.lock --python 3.11 --no-header --annotation-style line -q

lint: install ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: install lint ## Lint, then the whole test suite on real PostgreSQL and RabbitMQ
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: install ## The fault suite (tests/faults): broker, PostgreSQL, processes and SMTP faults under load; rewrites README's Faults table
	FAULT_SUITE=1 FAULTS_README=1 $(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

migrate: install ## Create the databases if missing and apply every service's migrations
	$(BIN)/python -m shared.preflight ORDERS_ REPORTS_ SCHEDULER_ NOTIFICATIONS_
	$(BIN)/python -m orders_service.main migrate
	$(BIN)/python -m reports_service.main migrate
	$(BIN)/python -m scheduler_service.main migrate
	$(BIN)/python -m notifications_service.main migrate

run: migrate ## Run the suite as local processes (Ctrl-C stops everything); SCALE=reports=3 runs three reports processes; OBSERVE=1 adds Debian's Prometheus
	$(BIN)/python -m deploy.launcher --procfile $(PROCFILE) --scale "$(SCALE)"

$(VENV)/.bench-installed: $(STAMP) requirements-bench.lock
	@$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -r requirements-bench.lock
	@command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "installing wrk and nginx (Debian)"; apt-get install -y -q wrk nginx-light >/dev/null; }
	@test -x /usr/sbin/smtp-sink || { echo "installing postfix for its smtp-sink (Debian; left unconfigured, no mail server starts)"; \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/dev/null; }
	@touch $@

bench: $(VENV)/.bench-installed ## Run the benchmarks (peers and load included) and rewrite docs/benchmarks.md
	@# each benchmark gets a vhost of its own through the management API: enable it on a local broker that lacks it
	@! command -v rabbitmq-plugins >/dev/null || rabbitmq-plugins -q is_enabled rabbitmq_management >/dev/null 2>&1 || { \
		echo "enabling rabbitmq_management (the benchmarks create their vhosts through it)"; \
		rabbitmq-plugins -q enable rabbitmq_management >/dev/null; \
		for _ in $$(seq 30); do (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null && break; sleep 1; done; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-instructions: $(STAMP) ## Instructions per event (relay, consumer) and per POST /orders (orders, gateway), counted by valgrind (a figure the machine does not move)
	@command -v valgrind >/dev/null || { echo "installing valgrind (Debian)"; apt-get install -y -q valgrind >/dev/null; }
	$(BIN)/python -m bench.instructions $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install lock lint test test-faults migrate run bench bench-instructions clean
