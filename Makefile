# Two entry points (see README): `make run` and `make test`.  Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install data clean

$(BIN)/aac-sparse: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,mpi]'
	touch $@

install: $(BIN)/aac-sparse

# The main job: fetch the ALL leukemia microarrays (Debian archive, no R) and tune the
# SET+RigL meta-algorithm on them with SMAC (bundled scenario leukemia.yaml, ~10 min).
run: install
	$(BIN)/aac-sparse data fetch all-leukemia
	$(BIN)/aac-sparse tune --scenario leukemia.yaml

# The offline datasets the real-data tests check (they skip, saying so, if a fetch fails).
data: install
	-$(BIN)/aac-sparse data fetch all-leukemia
	-$(BIN)/aac-sparse data fetch fashion-mnist

test: install data
	$(BIN)/ruff check aac_sparse tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs/train-* .pytest_cache
