# The two commands a newcomer needs: `make run` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  ?= torch==2.13.0
MODEL  ?=
ARGS   ?=

.PHONY: install run test lint lock clean bench bench-env deploy-tools

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"          # first, so nothing pulls a multi-GB CUDA build
	$(PIP) install -q -c constraints.txt -e ".[test]"   # the versions the suite passed with
	touch $@

install: $(VENV)/.installed

## Serve (the bundled tiny demo model is built into the HF cache offline the first time).
run: install
	$(VENV)/bin/hfserve demo
	$(VENV)/bin/hfserve serve $(MODEL) $(ARGS)

## The whole suite: lint, architecture contracts, unit and end-to-end tests, deployment tests.
## (test-deps installs ffmpeg, espeak-ng and redis-server when run as root with apt; otherwise media tests skip, saying why.
## The container tests start (and stop) a private Docker engine when they can, else they skip and say why.)
test: install
	bash scripts/test-deps.sh
	$(PY) -m pytest -q

## Debian packages the container tests need (docker.io, debootstrap, docker-compose); root or sudo.
deploy-tools:
	scripts/deploy-tools.sh

lint: install
	$(VENV)/bin/ruff check app tests
	$(VENV)/bin/lint-imports

## Re-resolve pyproject.toml's ranges into constraints.txt (then run `make test` before committing it).
lock:
	TORCH="$(TORCH)" scripts/lock.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## Benchmark: hfserve vs upstream `transformers serve --continuous-batching` vs static generate (bench/README.md).
UPSTREAM_VENV := bench/.venv-upstream
$(UPSTREAM_VENV)/.installed:
	python3 -m venv $(UPSTREAM_VENV)
	$(UPSTREAM_VENV)/bin/pip install -q --upgrade pip
	$(UPSTREAM_VENV)/bin/pip install -q "$(TORCH)"
	$(UPSTREAM_VENV)/bin/pip install -q "transformers[serving]==5.23.0" accelerate
	touch $@

bench-env: $(UPSTREAM_VENV)/.installed

bench: install bench-env
	$(PY) bench/compare.py $(ARGS)
