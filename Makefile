# Two commands: `make notebooks` (the companion series, cpu profile) and `make test` (what CI runs).
# Versions are pinned in constraints.txt (torch/torchvision must be a matched pair).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu
OUT    ?= runs/notebooks

.PHONY: venv data data-smoke notebooks test unit lab clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Synthetic data: generated once per profile, skipped when it is already there.
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

lab: venv
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf runs .pytest_cache
