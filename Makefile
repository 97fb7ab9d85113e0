# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv and install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q

DEMO := runs/demo
demo: install
	mkdir -p $(DEMO)
	$(VENV)/bin/hashhop generate --tokens 4000 --hops 2 --cot --queries 5 --samples 40 --seed 1 -o $(DEMO)/data.jsonl
	$(PY) examples/noisy_oracle.py $(DEMO)/data.jsonl $(DEMO)/answers.jsonl --error-rate 0.2
	$(VENV)/bin/hashhop score $(DEMO)/data.jsonl $(DEMO)/answers.jsonl
	$(VENV)/bin/hashhop generate --tokens 10000000 --prompt-only -o $(DEMO)/prompt-10M.txt

bench: install
	$(PY) benchmarks/generate.py

clean:
	rm -rf $(VENV) runs .pytest_cache
