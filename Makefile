# Two entry points (see README): `make run` and `make test`.  Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

$(BIN)/aac-sparse: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/aac-sparse

# The main job: fetch FashionMNIST (offline, Debian archive) and train SET on it.
run: install
	$(BIN)/aac-sparse data fetch fashion-mnist
	$(BIN)/aac-sparse train --preset set --dataset fashion-mnist --epochs 5 --out runs/fashion-mnist-set

test: install
	$(BIN)/ruff check aac_sparse tests benchmarks
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs/train-* .pytest_cache
