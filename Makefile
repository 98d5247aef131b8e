# PAP-REC Workbench — the commands the README documents. Each target creates or refreshes the local
# virtual environment (.venv) itself, so `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv run info test test-slow reproduce clean-venv

help:
	@echo "make run        install into $(VENV) and launch the workbench (http://localhost:8501)"
	@echo "make info       install into $(VENV) and print the embedded dataset's overview"
	@echo "make test       install into $(VENV) and run the default test suite (CPU, < 15 min)"
	@echo "make test-slow  run the long end-to-end tests (marked slow)"
	@echo "make reproduce  run every notebook at the full budget into results/ (resumable; hours on a CPU)"

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run workbench/app.py

info: $(STAMP)
	$(VENV)/bin/pap-rec data info --dataset ml-100k

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

reproduce: $(STAMP)
	$(VENV)/bin/pap-rec reproduce --budget full --out results

clean-venv:
	rm -rf $(VENV)
