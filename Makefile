# Atlas: `make run` starts everything locally, `make test` runs the whole suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# Debian packages the test suite needs: a browser for the page tests, a PostgreSQL server, fonts for screenshots.
TEST_DEBS := chromium postgresql fonts-dejavu-core

.PHONY: run test test-sqlite test-postgres bench system-deps vendor clean

$(RUNTIME): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(DEV): $(RUNTIME) requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(RUNTIME)
	$(PY) -m atlas.devserver

system-deps:
	@missing=$$(for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: $(DEV) system-deps test-sqlite test-postgres

test-sqlite: $(DEV)
	$(PY) -m pytest -q -p no:cacheprovider

test-postgres: $(DEV)
	$(PY) -m pytest -q -p no:cacheprovider --db=postgres -m "not e2e" tests/api tests/services tests/web tests/test_migrations.py

bench: $(DEV)
	$(PY) -m bench

vendor:
	atlas/static/vendor/update.sh

clean:
	rm -rf $(VENV) .pytest_cache
