# Two entry points a new user needs: `make run` and `make test`. Each creates the
# virtualenv under .venv by itself, with pinned versions from constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test tools lint typecheck bench bench-codec bench-turns bench-moves fuzz soak clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway run --config config/default.toml

# Validators and servers the tests run for real, from Debian's packages when missing:
# promtool (alert rules and scrape config), rsyslogd (log shipping), npm (fetches
# @grafana/schema and TypeScript for the dashboard check), openssl (the benchmark AI's
# wss:// certificate), redis-server (the fleet's tests start their own).
tools:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v rsyslogd >/dev/null || missing="$$missing rsyslog"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

test: $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Capacity side by side: the gateway and the yardstick relay (../shared/bench, run from
# its own .venv-relay) under the same load, ws:// and wss:// AI legs, both audio formats,
# three steps where the relay uses about 25, 50 and 75% of a core on a 2-core EPYC (40, 100
# and 230 calls; about 15 minutes; writes out/bench/capacity.json and capacity.md).
# BENCH_ARGS="--profile" adds py-spy's top entries, "--memory" what each call holds (tracemalloc).
bench: $(STAMP) tools
	$(BIN)/python ops/bench/capacity.py $(BENCH_ARGS)

# Every listener and parser under atheris, coverage-guided: a million inputs (about 5-10
# minutes on 2 cores); prints inputs, crashes (must be 0) and the slowest input.
fuzz: $(STAMP)
	$(BIN)/python ops/fuzz/run.py --inputs $(or $(FUZZ_INPUTS),1000000)

# Calls with churn for a long time (30 minutes by default; SOAK_MINUTES to change), RSS,
# descriptors and tasks sampled every 30 s; prints their growth after warm-up.
soak: $(STAMP)
	$(BIN)/python ops/bench/soak.py --minutes $(or $(SOAK_MINUTES),30)

# A deploy that moves live calls: two gateways on one redis-server, MOVE_CALLS callers (50)
# on A, SIGTERM to A; prints calls moved, callers unfinished (must be 0) and the move gap.
bench-moves: $(STAMP) tools
	$(BIN)/python ops/bench/moves.py --calls $(or $(MOVE_CALLS),50)

bench-codec: $(STAMP)
	$(BIN)/python ops/bench/codec_cost.py

bench-turns: $(STAMP)
	$(BIN)/python ops/bench/turn_taking.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
