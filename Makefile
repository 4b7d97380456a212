# Everything a fresh Debian machine (root) needs, installed by the project itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# nginx, tor, prometheus (promtool) and systemd (systemd-analyze): the deployment files
# under config/ are checked by the operator's own tools (tests/integration/test_deployment_files.py).
APT_PACKAGES := litecoind monero chromium chromium-driver postgresql-client \
	nginx tor prometheus systemd
export BCL_DATA_DIR := $(CURDIR)/var/bitcoinlib

.PHONY: setup demo test lint unit contract bench clean apt postgres

setup: apt postgres node_modules/.installed $(VENV)/.installed

# Idempotent: only calls apt when a binary is missing. The tools' packages would start
# their daemons (nginx on :80, tor, a Prometheus server): a temporary policy-rc.d (only
# when the machine has none) keeps them stopped; the tests run their own.
apt:
	@if ! command -v litecoind >/dev/null || ! command -v monerod >/dev/null \
		|| ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! command -v pg_dump >/dev/null || ! command -v nginx >/dev/null \
		|| ! command -v tor >/dev/null || ! command -v promtool >/dev/null \
		|| ! command -v systemd-analyze >/dev/null; then \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d; \
			trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
		fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi

# The suite runs again on PostgreSQL; start Debian's server when none answers.
postgres:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		if ! command -v pg_ctlcluster >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
		fi; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -n1) main start || true; \
		for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(VENV)/bin/gateway demo

lint: setup
	$(VENV)/bin/ruff check gateway chains webhooks tests bench
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -m unit -q

# Every chain family through its driver: the fake in memory, UTXO on a real litecoind.
contract: setup
	$(VENV)/bin/pytest -m contract -q

# The whole suite (contract tests included: they touch no database) on SQLite, then the
# suites that run the gateway again on PostgreSQL (unit and contract tests touch no
# database; integration tests already run on both).
# The whole suite on SQLite, and at the same time the e2e and reliability suites on
# PostgreSQL (they mostly wait on nodes and sockets, so together they take the time of
# one). Each run has its own temporary directory; either failing, or collecting no test
# (exit 5), fails the target.
test: setup lint
	@tmp=$$(mktemp -d); \
	GATEWAY_TEST_DATABASE=postgresql $(VENV)/bin/pytest -q -p no:cacheprovider \
		--basetemp=$$tmp/postgresql -m "e2e or reliability" > $$tmp/postgresql.log 2>&1 & pg=$$!; \
	echo "--- whole suite on SQLite (e2e and reliability on PostgreSQL run alongside) ---"; \
	$(VENV)/bin/pytest -q -p no:cacheprovider --basetemp=$$tmp/sqlite; sqlite=$$?; \
	wait $$pg; postgresql=$$?; \
	echo "--- e2e and reliability on PostgreSQL ---"; cat $$tmp/postgresql.log; \
	echo "SQLite run: exit $$sqlite; PostgreSQL run: exit $$postgresql"; \
	test $$sqlite -eq 0 && test $$postgresql -eq 0 && rm -rf $$tmp

# Every benchmark, then one line each: P<n> <name> <measured> <goal> met|not met
# (docs/benchmarks.md). At most 10 minutes.
bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
