# One task runner; CI (.ci/run) uses these verbs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 50051

.PHONY: venv build-dev build-prod protos protos-check lint fmt stubtest test-rs test-py test run bench clean

$(STAMP): requirements-dev.txt requirements-kdiffusion.txt requirements-worker.txt requirements-serve.txt requirements-build.txt
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	# k-diffusion pins numpy<2 through dctorch; tests load only its sampling code.
	$(VPY) -m pip install -q --no-deps -r requirements-kdiffusion.txt
	touch $(STAMP)

venv: $(STAMP)

# Release build of the extension into the virtualenv (maturin develop installs it editable).
build-dev: $(STAMP)
	$(VENV)/bin/maturin develop --release -q

build-prod: $(STAMP)
	$(VENV)/bin/maturin build --release -o dist

protos: $(STAMP)
	PATH=$(VENV)/bin:$$PATH scripts/gen_protos.sh

protos-check: $(STAMP)
	PATH=$(VENV)/bin:$$PATH scripts/gen_protos.sh --check

fmt: $(STAMP)
	cargo fmt --all
	$(VENV)/bin/ruff format python tests scripts
	$(VENV)/bin/ruff check --fix python tests scripts

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests scripts
	$(VENV)/bin/ruff format --check python tests scripts
	$(VENV)/bin/mypy

# The hand-written stub of the extension must match the compiled module.
stubtest: build-dev
	$(VPY) -m mypy.stubtest sigmaserve._core

test-rs:
	cargo test -p sigmaserve-core --release

test-py: build-dev
	$(VENV)/bin/pytest -q tests

# The server's tests in a virtualenv holding only the runtime dependencies, as the server image
# installs them: the built wheel without extras (no torch, diffusers or prometheus-client),
# plus pytest. Runs the tests marked `runtime`; those needing an extra skip themselves.
RUNTIME_VENV := .venv-runtime
RUNTIME_WHEEL := build/runtime-wheel
RUNTIME_TESTS := tests/test_server_admission.py tests/test_server_errors.py \
	tests/test_server_features.py tests/test_server_interceptors.py tests/test_server_load.py \
	tests/test_server_startup.py tests/test_service.py

.PHONY: test-runtime
test-runtime: $(STAMP)
	rm -rf $(RUNTIME_WHEEL) $(RUNTIME_VENV)
	$(VENV)/bin/maturin build --release -q -o $(RUNTIME_WHEEL)
	$(PY) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q $(RUNTIME_WHEEL)/*.whl pytest pytest-timeout
	$(RUNTIME_VENV)/bin/python -c "import importlib.util as u; extras = [m for m in ('torch', 'diffusers', 'prometheus_client') if u.find_spec(m)]; raise SystemExit(f'extras installed: {extras}' if extras else 0)"
	$(RUNTIME_VENV)/bin/pytest -q -m runtime -p no:cacheprovider $(RUNTIME_TESTS)

test: lint protos-check test-rs stubtest test-py test-runtime

# `make run` installs only what serving needs (requirements-serve.txt, about 100 MB; no torch)
# into its own virtualenv, builds the extension there and serves.
SERVE_VENV := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

$(SERVE_STAMP): requirements-serve.txt requirements-build.txt
	test -x $(SERVE_VENV)/bin/python || $(PY) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q -r requirements-serve.txt -r requirements-build.txt
	touch $(SERVE_STAMP)

run: $(SERVE_STAMP)
	VIRTUAL_ENV=$(abspath $(SERVE_VENV)) $(SERVE_VENV)/bin/maturin develop --release -q
	$(SERVE_VENV)/bin/sigmaserve serve --host $(HOST) --port $(PORT)

# ---- the compose stack on a real Docker engine (docs/deployment.md, "make test-stack") --------
# Installs Debian's Docker engine if missing, runs a private dockerd, builds the images, brings
# up the cpu profile, checks it from outside and tears it down: build/stack/report.json.
# Needs root (CI and the dev machines run as root).
.PHONY: test-stack
test-stack: build-dev
	PYTHON=$(VPY) scripts/stack/test_stack.sh

bench: build-dev
	$(VPY) scripts/bench_noise.py
	$(VPY) scripts/bench_schedules.py
	$(VPY) scripts/bench_grpc.py

clean:
	cargo clean
	rm -rf $(VENV) $(SERVE_VENV) dist
