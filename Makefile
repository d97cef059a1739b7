# The README's two commands: `make demo` and `make test`. Both create ./.venv on first use and
# reinstall only when pyproject.toml changes, so running them again is cheap (idempotent).
PYTHON ?= python3
# CI and `make bench` add the bench extra: the reference tools the benchmarks compare against
EXTRAS ?= dev
comma := ,
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test lint bench run-bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("OpenSDV needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opensdv demo

test: $(STAMP)
	. scripts/services.sh && $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench
	$(BIN)/python -m mypy src

bench:
	$(MAKE) EXTRAS=dev,bench run-bench

run-bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
