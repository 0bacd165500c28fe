# The README's two commands -- `make run` (main job on the synthetic default) and `make test` (lint + tests) --
# both create the virtual environment .venv (Python 3.11, the project with all extras) when it is missing or
# when setup.cfg / pyproject.toml changed since it was made. `make test` is what CI runs: the expensive
# cross-bundle tests (sharing, torchrun, MONAI Label) on the representative 3D and 2D bundles; `make test-all`
# runs them on every bundle (the `slow` marker). `make bundles` regenerates bundles/*/configs from bundles/_parts.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)
RESULTS ?= results/demo

.PHONY: env run test test-all lint bundles bench clean

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[label,dev]"
	@rm -f $(VENV)/.deps-* && touch $(STAMP)

# (re)point the editable install at this checkout: a cached environment may come from another clone
env: $(STAMP)
	@$(BIN)/python -c "import edge_networks, pathlib, sys; sys.exit(pathlib.Path(edge_networks.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())" 2>/dev/null \
		|| $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .

run: env
	$(BIN)/python -m edge_networks.demo --out $(RESULTS)

lint: env
	$(BIN)/ruff check .

# pytest-xdist: one worker per core of a CI machine (2); TEST_WORKERS=0 runs in one process
TEST_WORKERS ?= 2
test: lint
	$(BIN)/python -m pytest -q -m "not slow" --durations=25 -n $(TEST_WORKERS) --dist loadgroup

test-all: lint
	$(BIN)/python -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadgroup

bundles: env
	$(BIN)/python -m edge_networks.bundle.generate

bench: env
	$(BIN)/python benchmarks/edge_transform.py
	$(BIN)/python benchmarks/synthetic_data.py --full
	$(BIN)/python benchmarks/synthetic_2d.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
