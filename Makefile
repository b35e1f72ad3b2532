# one-yolov5: set-up, the main job and the tests. Every target installs what it needs and is idempotent.
#   make demo     the main job: train/val/detect/export on built-in data (creates .venv on first use; BACKEND=torch)
#   make test     the test suite on both backends (creates .venv and .venv-torch on first use)
SHELL := /bin/bash
PY310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do \
          [ -x "$$(command -v $$p)" ] && $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo $$p; break; }; done)
PYTORCH_PY ?= $(shell for p in python3.11 $$HOME/.pyenv/versions/3.11*/bin/python3.11 /usr/bin/python3.11 python3; do \
          [ -x "$$(command -v $$p)" ] && $$p -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
VENV_TORCH := .venv-torch
PYTEST_ARGS ?= -m "not slow"
PIP_FLAGS := --disable-pip-version-check -q
REFERENCE_SETUP := ../shared/tools/ultralytics-reference/setup.sh
PEER_VENV ?= $(or $(TMPDIR),/tmp)/ultralytics-ref
export PEER_VENV

.PHONY: venv venv-torch demo test test-oneflow test-torch test-all reference clean-venv

$(VENV)/.installed: requirements.txt
	@[ -n "$(PY310)" ] || { echo "ERROR: python3.10 not found (OneFlow 0.9.0 has wheels for Python <= 3.10 only)"; exit 1; }
	$(PY310) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements.txt
	touch $@

$(VENV_TORCH)/.installed: requirements-torch.txt
	@[ -n "$(PYTORCH_PY)" ] || { echo "ERROR: no python3 >= 3.9 found for the PyTorch venv"; exit 1; }
	$(PYTORCH_PY) -m venv $(VENV_TORCH)
	$(VENV_TORCH)/bin/pip install $(PIP_FLAGS) -r requirements-torch.txt
	touch $@

venv: $(VENV)/.installed
venv-torch: $(VENV_TORCH)/.installed

BACKEND ?= oneflow
demo: venv
	@if [ "$(BACKEND)" = torch ]; then $(MAKE) --no-print-directory venv-torch && $(VENV_TORCH)/bin/python -m utils.demo --backend torch; \
	else $(VENV)/bin/python -m utils.demo --backend $(BACKEND); fi

# The ultralytics reference (for parity tests) is set up only where its tool exists (this project's CI machines).
reference:
	@if [ -x "$(PEER_VENV)/bin/python" ] && "$(PEER_VENV)/bin/python" -c "import yolov5.models.yolo" 2>/dev/null; then \
	    echo "ultralytics reference ready: $(PEER_VENV)"; \
	elif [ -f "$(REFERENCE_SETUP)" ]; then bash $(REFERENCE_SETUP) "$(PEER_VENV)" > /tmp/ultralytics-ref-setup.log 2>&1 \
	    || { tail -20 /tmp/ultralytics-ref-setup.log; exit 1; }; \
	else echo "ultralytics reference tool not found: parity tests will be skipped"; fi

test-oneflow: venv
	YOLOV5_BACKEND=oneflow $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-torch: venv-torch
	YOLOV5_BACKEND=torch $(VENV_TORCH)/bin/python -m pytest $(PYTEST_ARGS)

test: venv venv-torch reference
	$(MAKE) --no-print-directory test-oneflow
	$(MAKE) --no-print-directory test-torch

test-all:
	$(MAKE) test PYTEST_ARGS=""

clean-venv:
	rm -rf $(VENV) $(VENV_TORCH)
