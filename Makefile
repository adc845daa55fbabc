PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench bench-quick docs eval clean chromium screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/payrank demo

CHROMIUM := /usr/bin/chromium

# the browser tests drive Debian's Chromium (Playwright cannot download browsers here): installed when root
chromium:
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "the browser tests need $(CHROMIUM): run 'sudo apt-get install -y chromium'"; fi; }

test: $(STAMP) chromium
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
	$(BIN)/python -m benchmarks.workspace
	$(BIN)/python -m benchmarks.plot

screenshots: $(STAMP) chromium
	$(BIN)/python -m tests.web_screenshots

bench-quick: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_benchmarks_smoke.py tests/test_benchmark_api_smoke.py

clean:
	rm -rf .payrank .pytest_cache .ruff_cache
