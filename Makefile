# sqlnb: `make demo` and `make test` each do the whole set-up from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
EXTRAS ?= arrow,notebook,test,browser,interactive,dist
export SQLNB_CACHE ?= $(CURDIR)/build

.PHONY: setup system-deps venv build wheelhouse demo test test-fast contracts bench lab memcheck dist clean help

help:
	@echo "make demo      set up everything, build the demo database, run the tour notebook -> build/01-tour.html"
	@echo "make test      set up everything, check the import contracts, run the whole test suite (browser tests included; under CI=true also a short valgrind subset)"
	@echo "make contracts check the import contracts of docs/architecture.md (lint-imports)"
	@echo "make bench     run the benchmarks side by side with the peers (benchmarks/README.md)"
	@echo "make lab       start JupyterLab on notebooks/ with the demo database ready"
	@echo "make memcheck  run the memory-safety checks (valgrind + RSS)"
	@echo "make dist      sdist + manylinux wheels for CPython 3.10-3.13 in dist/, each checked and smoke-tested without compiler or network (docs/build.md)"

setup: system-deps build

# Debian packages: BerkeleyDB SQL (the bdb engine) and chromium (browser tests).
system-deps:
	@bash tools/system_deps.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" "setuptools>=77" "Cython>=3.0" wheel

# Python dependencies: installed once, again only when pyproject.toml changes.
$(VENV)/.sqlnb-deps: pyproject.toml | $(BIN)/python
	SQLNB_NO_EXT=1 $(BIN)/pip install -q -e ".[$(EXTRAS)]" --no-build-isolation
	@touch $@

venv: $(VENV)/.sqlnb-deps

# Compile our SQLite (objects cached in build/obj), lsm1 and the Cython engines in place.
build: venv
	SQLNB_REQUIRE_EXT=1 $(PY) setup.py -q build_ext --inplace
	@$(PY) -c "import sqlnb; [print('[sqlnb] engine', e.name, e.version if e.available else 'UNAVAILABLE: ' + str(e.why)) for e in sqlnb.engines()]"

# The dependency wheels the wheel test installs from without network ($(SQLNB_CACHE)/wheelhouse/cp3XX):
# downloaded once, nothing fetched again while pyproject.toml's requirements stay the same.
wheelhouse: venv
	$(PY) tools/dist.py wheelhouse

demo: setup
	$(PY) -m sqlnb.demo

# The import contracts (pyproject.toml [tool.importlinter], docs/architecture.md) are checked first;
# under CI=true a short valgrind subset runs next (about 2 min); the full set is `make memcheck`.
# tests/test_dist.py (marker `dist`) builds a wheel and smoke-tests it offline: `-m 'not dist'` leaves it
# out locally, never under CI=true.
test: setup wheelhouse
	@if [ "$$CI" = "true" ] && case "$(PYTEST_ARGS)" in *"not dist"*) true;; *) false;; esac; then \
	  echo "CI=true: the dist tests may not be deselected (PYTEST_ARGS=$(PYTEST_ARGS))"; exit 1; fi
	$(BIN)/lint-imports --no-cache
	@if [ "$$CI" = "true" ]; then $(PY) tools/memcheck.py --quick --skip-rss; fi
	$(PY) -m pytest -q $(PYTEST_ARGS)

contracts: venv
	$(BIN)/lint-imports --no-cache

bench: setup
	$(BIN)/pip install -q -e ".[bench]" --no-build-isolation
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# JupyterLab on loopback (token login), notebooks/ as its root; kernels find the demo database
# through $SQLNB_CACHE (exported above). LAB_PORT=0 picks a free port; LAB_ARGS passes more options.
LAB_PORT ?= 8888
lab: setup
	$(PY) -m sqlnb.demo --data-only
	@# %sql / %%sql cells are highlighted as SQL by jupyterlabs-sql-codemirror (the notebook extra; docs/notebook.md)
	@$(BIN)/jupyter labextension list 2>&1 | grep -q "jupyterlabs-sql-codemirror.*enabled" || { echo "[sqlnb] jupyterlabs-sql-codemirror (SQL highlighting of %sql and %%sql cells) is not installed or not enabled: $(BIN)/pip install -e '.[notebook]'"; exit 1; }
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

memcheck: setup
	$(PY) tools/memcheck.py

# sdist + one manylinux wheel per CPython (DIST_PYTHONS: versions or interpreter paths), built with
# the standard `build` frontend from the sdist, repaired by auditwheel, checked by twine and
# check-wheel-contents, each smoke-tested in a fresh venv without compiler or network; a summary
# at the end. Needs network for the isolated builds and the first wheelhouse of each Python.
DIST_PYTHONS ?= 3.10 3.11 3.12 3.13
dist: build
	$(PY) tools/dist.py all $(DIST_PYTHONS)

clean:
	rm -rf build/lib* build/temp* sqlnb/*.so sqlnb/_fast.c sqlnb/_fast_bdb.c dist/
