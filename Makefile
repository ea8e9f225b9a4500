# Two entry points that work on a fresh machine with python3, pip and make:
#   make main   installs what it needs into .venv and runs the main job
#   make test   installs what it needs into .venv and runs lint and the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= outputs

.PHONY: main test lint docs compare compare-all compare-vit figure3 figures clean

$(PY):
	$(PYTHON) -m venv $(VENV) || { $(PYTHON) -m pip install --user virtualenv && $(PYTHON) -m virtualenv $(VENV); }
	$(PY) -m pip install -q --no-compile --upgrade pip

# pip byte-compiles what it installs one file at a time (half of the install's time); compileall
# does the same on every core. A file it cannot compile is compiled at import, as pip leaves it.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install -q --no-compile -e '.[$*]'
	$(PY) -m compileall -qq -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true
	touch $@

main: compare

compare: $(VENV)/.installed-train $(VENV)/.installed-figures
	$(PY) -m experiments.compare --out $(OUT)/compare

compare-all: $(VENV)/.installed-train $(VENV)/.installed-figures
	$(PY) -m experiments.compare --all-methods --out $(OUT)/compare

compare-vit: $(VENV)/.installed-train $(VENV)/.installed-figures
	$(PY) -m experiments.compare --model vit --scenario-seeds 0 --no-figure3 --out $(OUT)/compare_vit

figure3: $(VENV)/.installed-figures
	$(PY) -m theory.figure3 --out $(OUT)/figure3.png

figures: $(VENV)/.installed-figures $(VENV)/.installed-train
	for n in figure1 figure2 figure3 figure4 figure5 figure4_design theorem3; do \
	  $(PY) -m theory.$$n --out $(OUT)/$$n.png || exit 1; done

lint: $(VENV)/.installed-test
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q -n 2

# docs/build.sh runs Sphinx with -j 10: Sphinx reads the pages in chunks of (pages / jobs); 10 jobs
# make one page a chunk, so the executed pages spread over the cores instead of queueing behind the
# notebooks. A build whose only failure is a kernel's port clash at start runs once more.
docs: $(VENV)/.installed-docs
	docs/build.sh $(PY)

clean:
	rm -rf $(VENV) $(OUT) *.egg-info
