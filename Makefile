# The two commands: `make run` and `make test`. Everything else is what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.installed-test
ASSETS := clipsync/static/vendor/.built

.PHONY: run test install install-test assets oidc-provider run-deps test-deps lint audit format clean

## make run: set up everything and start ClipSync on http://127.0.0.1:8000
run: install assets run-deps
	$(BIN)/clipsync migrate
	$(BIN)/clipsync serve

## make test: install what the tests need (ffmpeg, Redis, PostgreSQL, ClickHouse,
## Chromium, node and the OpenID provider) when it is missing, then run the whole suite
test: install-test test-deps assets oidc-provider lint audit
	$(BIN)/python -m pytest

# The OpenID provider the auth_oidc tests start on loopback (npm's oidc-provider, run
# with node: tests/oidc.py); npm's own record of the install marks it done.
OIDC_PROVIDER := tests/oidc_provider/node_modules/.package-lock.json

oidc-provider: $(OIDC_PROVIDER)

$(OIDC_PROVIDER): tests/oidc_provider/package.json tests/oidc_provider/package-lock.json
	npm ci --prefix tests/oidc_provider --no-audit --no-fund --loglevel=error

install: $(INSTALLED)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "Could not create a virtual environment: on Debian, apt-get install python3-venv"; exit 1; }

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

install-test: $(TEST_INSTALLED)

$(TEST_INSTALLED): $(INSTALLED)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

assets: $(ASSETS)

$(ASSETS): package.json package-lock.json scripts/bundle-assets.mjs
	npm ci --no-audit --no-fund --loglevel=error
	node scripts/bundle-assets.mjs

run-deps:
	scripts/install-deps.sh run

test-deps:
	scripts/install-deps.sh test

## make audit: known vulnerabilities in the Python packages installed in .venv and in
## the front end bundled from package-lock.json (scripts/audit_deps.py). A known
## vulnerability always fails it. A package the advisory services could not check is
## listed as NOT AUDITED; AUDIT_UNREACHABLE=fail makes that fail too. It only warns by
## default because the machines this project runs on reach PyPI's package pages but
## not its per-version advisory data, nor npm's audit endpoint.
AUDIT_UNREACHABLE ?= warn
audit: install-test
	$(BIN)/python scripts/audit_deps.py --unreachable=$(AUDIT_UNREACHABLE)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) node_modules clipsync/static/vendor build *.egg-info
