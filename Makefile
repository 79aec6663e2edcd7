# flowbridge: `make demo` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Every plugin and example package ships its own pyproject.toml; all are installed editable so
# that their entry points are live and their tests run against the working tree.
PACKAGES := $(sort $(dir $(wildcard plugins/*/pyproject.toml examples/*/pyproject.toml)))
STAMP  := $(VENV)/.installed

.PHONY: install test demo demo-flows lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml examples/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[dev]' $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

demo: install
	$(PY) -m flowbridge_shapes.demo --out out

# A conditional flow prior fitted to rings of Gaussians: out/flows_2d.png (well under a minute).
demo-flows: install
	$(PY) examples/flows_2d.py --out out/flows_2d.png

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Flow speed against nflows/zuko/bare MLPs, paper-scale modules, scale quality (~5 min):
# JSON in benchmarks/results/, numbers in benchmarks/README.md.
bench: install
	$(PY) benchmarks/flows_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
