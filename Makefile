# The two commands a new user needs: `make run` and `make test`.
VENV := .venv
PYTHON ?= python3

.PHONY: install run test lint fmt lock broker-start broker-stop bench bench-peer clean

# Every package comes pinned and hash-checked from the lock (`make lock`
# regenerates it from pyproject.toml); the project itself is installed
# without fetching anything more. Quiet on success (the build backend's notices
# go to the log); the whole log is shown if the install fails.
$(VENV)/.installed: pyproject.toml requirements-dev.lock
	@$(PYTHON) -m venv $(VENV)
	@mkdir -p .local
	@echo "installing into $(VENV) (log: .local/install.log)"
	@{ $(VENV)/bin/pip install -q --require-hashes -r requirements-dev.lock && \
	   $(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .; } > .local/install.log 2>&1 \
	   || { cat .local/install.log; exit 1; }
	@touch $@

install: $(VENV)/.installed

## Broker, every process and the simulator; the demo in the foreground, logs
## in .local/run/logs/ (VERBOSE=1: every log in the terminal). Ctrl-C stops all.
run: install
	VERBOSE=$(VERBOSE) scripts/run.sh

## Lint, a fresh broker, the whole suite; non-zero on any failure.
test: install
	scripts/test.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Re-pin every dependency (with hashes) after changing pyproject.toml.
LOCK_OPTS := --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock: install
	$(VENV)/bin/uv pip compile -q pyproject.toml requirements-build.in $(LOCK_OPTS) -o requirements.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml requirements-build.in --extra dev --extra bench $(LOCK_OPTS) \
		-o requirements-dev.lock

broker-start:
	broker/kafka.sh start

broker-stop:
	broker/kafka.sh stop

## Dispatch against Temporal on the same failover workflow, one run (bench/RESULTS.md).
bench-peer: install
	KAFKA_BOOTSTRAP=$${KAFKA_BOOTSTRAP:-127.0.0.1:9092} $(VENV)/bin/python bench/bench_peer_temporal.py --count $${COUNT:-500}

clean:
	broker/kafka.sh stop || true
	rm -rf .local
