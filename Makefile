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

.PHONY: env run test test-all lint bundles report bench clean

# pip writes the interpreter it runs under into each console script's #! line (torchrun, edge-seg-*). Run it
# through the environment's resolved path: .venv may be a link to a cached environment (.ci/run) that outlives
# the clone it was linked from, and a #! naming that clone's .venv would then point nowhere.
REAL_BIN = $(shell readlink -f $(VENV))/bin

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(REAL_BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[label,dev]"
	@rm -f $(VENV)/.deps-* && touch $(STAMP)

# (re)point the editable install at this checkout: a cached environment may come from another clone (-I: the
# check must not find ./edge_networks through the current directory). A console
# script whose #! interpreter no longer exists (installed from a clone since deleted) is pointed at this one.
env: $(STAMP)
	@$(BIN)/python -I -c "import edge_networks, pathlib, sys; sys.exit(pathlib.Path(edge_networks.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())" 2>/dev/null \
		|| $(REAL_BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@for f in $(REAL_BIN)/*; do \
		[ -f "$$f" ] && [ ! -L "$$f" ] || continue; \
		line=$$(head -c 256 "$$f" | head -n 1 | tr -d '\000'); \
		case "$$line" in "#!/"*python*) ;; *) continue ;; esac; \
		interp=$${line#\#!}; interp=$${interp%% *}; \
		[ -x "$$interp" ] || { sed -i "1s|^#!.*python[0-9.]*|#!$(REAL_BIN)/python|" "$$f" && echo "repaired #! of $$f"; }; \
	done

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

# docs/results.md from benchmarks/results/ (tests/test_docs.py fails when it is stale)
report: env
	$(BIN)/python -m edge_networks.report

bench: env
	$(BIN)/python benchmarks/edge_transform.py
	$(BIN)/python benchmarks/synthetic_data.py --full
	$(BIN)/python benchmarks/synthetic_2d.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
