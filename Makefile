# egress: `make demo` runs the main job on the bundled scenario, `make test` runs the tests.
# Both create the virtual environment .venv and install egress into it when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job: minutes saved per event vehicle by the two message-sign diversions
# deployed in Seattle (and their combination) after a football game at Lumen Field,
# at 30% compliance; mesoscopic, 3 replications, so that it takes a few minutes. It prints the
# savings and the engineering measures, and writes the tables, the GIS layers (runs/demo/gis)
# and the report (runs/demo/report.html). A rerun reuses the runs that finished (--resume).
demo: $(STAMP)
	@echo "egress demo: sodo-large-event, policies cherry_st_nb, spokane_st_sb, deployed_pair;"
	@echo "30% compliance, mesoscopic simulation, 3 paired replications (a few minutes on 2 cores)"
	$(BIN)/egress evaluate-policy scenarios/sodo-large-event.toml \
		--policy cherry_st_nb,spokane_st_sb,deployed_pair --fractions 0.3 \
		--replications 3 --out runs/demo --resume
	$(BIN)/egress report runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The fast tier: every test that runs no SUMO program (under a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not sumo"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/simulate_overhead.py

clean:
	rm -rf runs .pytest_cache
