# Every target the README and .ci/run use. `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
SAMPLE ?= manifests/samples/local-hello.yaml
FUZZ_EXAMPLES ?= 5000

.PHONY: help install run test test-unit test-aws test-e2e lint crds docs bench bench-events bench-failover bench-job bench-operator bench-tenancy fuzz

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with its test tools

run: install ## run the sample EcsJob end to end on the embedded local backend
	$(BIN)/ecsjob run -f $(SAMPLE) --backend local

test: install ## run every test tier (unit, moto server, operator end to end)
	$(BIN)/pytest tests

test-unit: install ## unit tests only (no I/O)
	$(BIN)/pytest tests/unit

test-aws: install ## engine tests against a moto server and the local backend
	$(BIN)/pytest tests/aws tests/local

test-e2e: install ## the operator process against a Kubernetes API emulator and moto
	$(BIN)/pytest tests/e2e

lint: install ## ruff, mypy (strict on the package) and the import layering contract
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

fuzz: install ## property-based fuzzing of `ecsjob run` (FUZZ_EXAMPLES, default 5000; fresh random examples)
	ECSJOB_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ECSJOB_FUZZ_RANDOM=1 $(BIN)/pytest tests/aws/test_fuzz_cli.py -s -p no:cacheprovider

crds: install ## regenerate crds/ from the models
	$(BIN)/ecsjob crds --out crds

bench: install ## 200 jobs x 10 tasks against a moto server: ECS calls, CPU and memory per poll
	$(PY) tests/bench/bench_engine.py

bench-events: install ## 200 jobs x 10 tasks polled, then fed by task state events from SQS: DescribeTasks per 10 min, detection
	$(PY) tests/bench/bench_engine.py --events

bench-failover: install ## 200 running jobs, SIGKILL of the active replica: takeover time, every job right, no duplicate
	$(PY) tests/bench/bench_failover.py --jobs $(or $(JOBS),200)

bench-job: install ## one job of 1,000 tasks at parallelism 100: DescribeTasks and engine CPU per poll, status size
	$(PY) tests/bench/bench_engine.py --big

bench-operator: install ## the operator process at scale (JOBS, TASKS, INTERVAL): ECS calls per interval, CPU, RSS, detection, Events
	$(PY) tests/bench/bench_operator.py --jobs $(or $(JOBS),250) --tasks $(or $(TASKS),5) --interval $(or $(INTERVAL),30)

bench-tenancy: install ## fair share (8 x 150 tasks vs a 1-task job) and RSS with 1,000 EcsCommands of 100 KiB
	$(PY) tests/bench/bench_tenancy.py

docs: install ## regenerate the field tables of docs/reference.md from the models
	$(PY) -c "from pathlib import Path; from ecsjob_operator.api.docgen import update_doc; update_doc(Path('docs/reference.md'))"
