# Two commands: `make notebooks` (the companion series, cpu profile) and `make test` (what CI runs).
# Versions are pinned in constraints.txt (torch/torchvision must be a matched pair).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu
OUT    ?= runs/notebooks

.PHONY: venv data data-smoke notebooks test unit lab clean browser-check gpu-check

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,sim]'
	touch $(STAMP)

venv: $(STAMP)

# Synthetic data: generated once per profile, skipped when it is already there (PROFILE=cpu_tex: data/synth-tex;
# PROFILE=cpu_movi: data/movi-mini, the MOVi-style 3D level made with PyBullet; an interrupted build resumes).
data: venv
	$(BIN)/python data_scripts/make_synthetic.py --profile $(PROFILE)

data-smoke: venv
	$(BIN)/python data_scripts/make_synthetic.py --profile smoke

notebooks: venv data
	$(BIN)/python notebooks/run_all.py --profile $(PROFILE) --out $(OUT)

unit: venv data-smoke
	$(BIN)/python -m pytest tests

# Unit tests, every notebook under papermill in the smoke profile (tests/test_notebooks.py),
# and nbval (lax) over the committed notebooks.
test: venv data-smoke
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg

# The widgets in a real browser (scripts/browser_check.py): JupyterLab from the venv, notebook 02 (smoke
# profile) run in headless chromium, its frame slider and slot selector moved; fails unless the figure changes.
# Installs Debian's chromium and chromium-driver with apt-get when missing (as root, or with passwordless sudo);
# skips, with a message and exit 0, only when no browser can be installed.
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser-check: venv data-smoke
	@if [ ! -x "$(CHROMIUM)" ] || [ ! -x "$(CHROMEDRIVER)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else SUDO=none; fi; \
	  if command -v apt-get >/dev/null && [ "$$SUDO" != none ]; then \
	    echo "browser-check: installing chromium and chromium-driver (apt-get)"; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium chromium-driver >/dev/null || echo "browser-check: apt-get could not install chromium"; \
	  fi; \
	fi; \
	if [ -x "$(CHROMIUM)" ] && [ -x "$(CHROMEDRIVER)" ]; then \
	  $(BIN)/python scripts/browser_check.py --chromium "$(CHROMIUM)" --chromedriver "$(CHROMEDRIVER)"; \
	else \
	  echo "browser-check: SKIPPED: no $(CHROMIUM) / $(CHROMEDRIVER), and none could be installed (needs apt-get as root)"; \
	fi

lab: venv
	$(BIN)/jupyter lab notebooks

# The published configurations on a GPU (issue 22, scripts/gpu_check.py): at most 8 minutes, offline; writes
# results/gpu/gpu_check.{json,md}. ARGS='--dry-run' runs the same code on the CPU at tiny sizes. On a GPU server
# whose Python already has torch: make gpu-check GPU_PYTHON=python3 (no venv is built, nothing is installed).
GPU_PYTHON ?= $(BIN)/python
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py $(ARGS)

clean:
	rm -rf runs .pytest_cache
