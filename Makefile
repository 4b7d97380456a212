# Everything a fresh Debian machine (root) needs, installed by the project itself.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# nginx, tor, prometheus (promtool) and systemd (systemd-analyze): the deployment files
# under config/ are checked by the operator's own tools (tests/integration/test_deployment_files.py).
# gcc and libc6-dev: the suite builds a small library its monero-wallet-rpc processes load
# (tests/support/small_rsa.c).
APT_PACKAGES := litecoind monero chromium chromium-driver postgresql-client \
	nginx tor prometheus systemd gcc libc6-dev
export BCL_DATA_DIR := $(CURDIR)/var/bitcoinlib

.PHONY: setup lock demo test check lint unit contract bench clean apt postgres i18n

setup: apt postgres node_modules/.installed $(VENV)/.installed

# Idempotent: only calls apt when a binary is missing. The tools' packages would start
# their daemons (nginx on :80, tor, a Prometheus server): a temporary policy-rc.d (only
# when the machine has none) keeps them stopped; the tests run their own.
apt:
	@if ! command -v litecoind >/dev/null || ! command -v monerod >/dev/null \
		|| ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
		|| ! command -v pg_dump >/dev/null || ! command -v nginx >/dev/null \
		|| ! command -v tor >/dev/null || ! command -v promtool >/dev/null \
		|| ! command -v systemd-analyze >/dev/null || ! command -v cc >/dev/null \
		|| [ ! -e /usr/include/dlfcn.h ]; then \
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

# requirements.lock pins every Python package of the virtualenv (the project's dependencies
# and its development tools, for Python 3.11 on Linux) with the hashes of its files; `make
# setup` installs exactly that set with uv (from PyPI, into the venv, at the version the lock
# names), removing anything else, then the project itself without dependencies. pip would
# take half a minute; the setup is part of `make test`'s ten minutes.
# tests/unit/test_lock.py fails when the installed set and the lock differ.
# uv itself (with pip and setuptools) comes from requirements-build.lock: the same
# versions as requirements.lock, each file checked against its hash.
$(VENV)/bin/uv: requirements-build.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements-build.lock
	@touch $@

$(VENV)/.installed: $(VENV)/bin/uv requirements.lock pyproject.toml
	$(VENV)/bin/uv pip sync -q --python $(PY) --require-hashes requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

# After a change to pyproject.toml's dependencies: resolve again, keeping every pin that
# still fits. `make lock LOCK_ARGS=--upgrade` moves everything to the newest releases,
# `LOCK_ARGS="--upgrade-package aiohttp"` one package. Then `make setup` and the tests.
# requirements-runtime.lock (what the Dockerfile installs) is the same versions without
# the development tools, requirements-build.lock the installers (pip, setuptools, uv):
# both resolved within requirements.lock.
LOCK_ARGS ?=
LOCK_FOR := --generate-hashes --python-version 3.11 --python-platform linux
lock: $(VENV)/bin/uv
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev $(LOCK_FOR) $(LOCK_ARGS) \
		-o requirements.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml $(LOCK_FOR) -c requirements.lock \
		-o requirements-runtime.lock
	printf 'pip\nsetuptools\nuv\n' | $(VENV)/bin/uv pip compile -q - $(LOCK_FOR) \
		-c requirements.lock -o requirements-build.lock

demo: setup
	$(VENV)/bin/gateway demo

# Languages (issue 32, docs/i18n.md): extract every marked message of the code and the
# templates into the template catalog, merge it into each language's catalog (new
# messages arrive untranslated; obsolete ones are dropped), and compile the catalogs the
# package ships. The compiled .mo files are committed: tests/unit/test_i18n_catalogs.py
# fails when one differs from its .po, or the .pot from the code.
LOCALE_DIR := gateway/locale
i18n: $(VENV)/.installed
	$(VENV)/bin/pybabel -q extract -F babel.cfg -o $(LOCALE_DIR)/messages.pot \
		--add-location=file --sort-output --no-wrap -c "Translators:" --omit-header gateway
	$(VENV)/bin/pybabel -q update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) \
		--no-wrap --ignore-obsolete --ignore-pot-creation-date
	$(VENV)/bin/pybabel -q compile -d $(LOCALE_DIR)

PYTEST := $(VENV)/bin/pytest -q -p no:cacheprovider
# Parallel: a module's tests stay on one worker (they share its fixtures), every test on
# the session's Monero network on one (tests/conftest.py sets the groups); each worker
# starts its own nodes once. Two workers per run (two runs side by side on two cores):
# more made the time-bound tests (second-factor locks of a second) flaky.
XDIST := -n 2 --dist loadgroup

LINT := $(VENV)/bin/ruff check gateway chains webhooks tests bench && $(VENV)/bin/mypy

lint: setup
	$(LINT)

unit: setup
	$(PYTEST) -m unit

# Every chain family through its driver: the fake in memory, the real ones on their nodes.
contract: setup
	$(PYTEST) $(XDIST) -m contract

# The fast gate (at most 90 seconds on a set-up clone): lint, types, and every test that
# needs neither a real node nor PostgreSQL (unit, contract on the fake family, integration
# on SQLite, HTTP tests on the fake family).
# ruff and mypy (one core) run beside the tests (two workers): either failing fails it.
check: setup
	@log=$$(mktemp); ( $(LINT) ) > $$log 2>&1 & lint=$$!; \
	$(PYTEST) $(XDIST) -m "not node and not postgresql and not reliability"; tests=$$?; \
	wait $$lint; linted=$$?; cat $$log; rm -f $$log; \
	test $$tests -eq 0 && test $$linted -eq 0

# Everything, the fast gate first (a failure there stops it). Then, side by side (2
# workers each, CPU-bound: the two lists are about as long): what needs a node or
# PostgreSQL or is a reliability test (kill, outage, load), the gateway on SQLite (a test
# that chose PostgreSQL itself runs there on it); and, on PostgreSQL, every test whose
# gateway follows GATEWAY_TEST_DATABASE again, with every test whose behaviour no database
# changes (`any_database`: the Monero tests, the fuzzer, the browsers' JavaScript, the
# login flood), which runs only there.
# Each run has its own temporary directory (kept when it fails: the nodes' and gateways'
# logs are there); either failing, or collecting no test (pytest's exit 5), fails the
# target.
test: check
	@tmp=$$(mktemp -d); \
	GATEWAY_TEST_DATABASE=postgresql $(PYTEST) $(XDIST) -m "stack_db or any_database" \
		--durations=15 --basetemp=$$tmp/postgresql > $$tmp/postgresql.log 2>&1 & pg=$$!; \
	echo "--- needs a node or PostgreSQL, or reliability: gateway on SQLite (PostgreSQL alongside) ---"; \
	$(PYTEST) $(XDIST) -m "(node or postgresql or reliability) and not any_database" \
		--durations=15 --basetemp=$$tmp/sqlite; sqlite=$$?; \
	wait $$pg; postgresql=$$?; \
	echo "--- every test whose gateway follows GATEWAY_TEST_DATABASE, on PostgreSQL (and every any_database test) ---"; \
	cat $$tmp/postgresql.log; \
	echo "SQLite run: exit $$sqlite; PostgreSQL run: exit $$postgresql (logs under $$tmp)"; \
	test $$sqlite -eq 0 && test $$postgresql -eq 0 && rm -rf $$tmp

# Every benchmark, then one line each: P<n> <name> <measured> <goal> met|not met
# (docs/benchmarks.md). At most 10 minutes.
bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
