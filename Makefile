# The two commands a new user needs: `make run` and `make test`.
VENV := .venv
PYTHON ?= python3

.PHONY: install run test lint fmt broker-start broker-stop bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV)
	@# Quiet on success (the build backend's notices go to the log); the whole
	@# log is shown if the install fails.
	@mkdir -p .local
	@echo "installing into $(VENV) (log: .local/install.log)"
	@{ $(VENV)/bin/pip install -q --upgrade pip && \
	   $(VENV)/bin/pip install -q -e '.[dev]'; } > .local/install.log 2>&1 \
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

broker-start:
	broker/kafka.sh start

broker-stop:
	broker/kafka.sh stop

clean:
	broker/kafka.sh stop || true
	rm -rf .local
