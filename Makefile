PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.PHONY: java-check demo test lint format bench bench-quick docs eval clean chromium screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

# Spark (--engine spark, tests/test_spark.py) needs Java 17+; the Spark tests are skipped without it.
java-check:
	@if command -v java >/dev/null 2>&1; then java -version 2>&1 | head -1; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get install -y -q openjdk-17-jre-headless; \
	else echo "Java 17+ is missing: Spark tests will be skipped. Install it as root:" \
	  "apt-get install openjdk-17-jre-headless (Debian/Ubuntu)"; fi

demo: $(STAMP)
	$(BIN)/payrank demo

CHROMIUM := /usr/bin/chromium

# the browser tests drive Debian's Chromium (Playwright cannot download browsers here): installed when root
chromium:
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "the browser tests need $(CHROMIUM): run 'sudo apt-get install -y chromium'"; fi; }

test: $(STAMP) java-check chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/python -m features.contract_doc > docs/data-contract.md
	$(BIN)/python -m features.contract_doc generator > docs/synthetic-book.md

eval: $(STAMP)
	$(BIN)/payrank evaluate --scenario all --learners offset --out .payrank/eval/offset.json
	$(BIN)/payrank evaluate --scenario all --out .payrank/eval/all.json

bench: $(STAMP)
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.training
	$(BIN)/python -m benchmarks.scoring
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.spark
	$(BIN)/python -m benchmarks.workspace
	$(BIN)/python -m benchmarks.plot

screenshots: $(STAMP) chromium
	$(BIN)/python -m tests.web_screenshots

bench-quick: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_benchmarks_smoke.py tests/test_benchmark_api_smoke.py

clean:
	rm -rf .payrank .pytest_cache .ruff_cache
