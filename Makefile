# Two commands for a newcomer:  `make run` (dashboard on the embedded default, demo data on first start)
# and `make test` (the whole test suite). Everything else here is what those two need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8501

.PHONY: run test test-long fuzz-long test-e2e-loaded setup setup-dev browser load-browser emulator pubsub lint bench clean

run: setup
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Three workers on two cores: the emulator, the browser and the command lines the tests start wait on each other, so a
# third worker fills the gaps (measured: 14 min 0 s with two, 9 min 32 s with three, before the last savings). Each
# worker has its own emulator and servers. The slowest fifteen tests are listed at the end, so a slowdown shows.
TEST_WORKERS ?= 3
test: setup-dev browser emulator pubsub
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

# The property-based suites at length: thousands of random worlds instead of the default run's fixed twenty (forty on
# the emulator instead of one); the item index against the rows over forty random histories instead of one, and over
# eight on the emulator with all seven views instead of one with two; resolves getting through a classification of a
# million rows, not 120k; the oracle's batches over the whole demo, not one month; the whole demo judged a second time,
# not one month; eight racing writers of seven resolves each, not four.
test-long: setup-dev emulator
	TRIAGE_EQUIVALENCE_EXAMPLES=3000 TRIAGE_EQUIVALENCE_BQ_SEEDS=$$(seq -s, 1 40) \
	  TRIAGE_INDEX_SEEDS=$$(seq -s, 1 40) TRIAGE_INDEX_BQ_SEEDS=$$(seq -s, 1 8) TRIAGE_INDEX_STEPS=16 \
	  TRIAGE_INDEX_BQ_EVERY_VIEW_LAST=1 TRIAGE_YIELDS_SCALE=1M TRIAGE_ORACLE_WHOLE=1 TRIAGE_RACE_WRITES=7 \
	  $(BIN)/python -m pytest tests/integration/test_engine_equivalence.py tests/integration/test_item_index.py \
	  tests/hardening/test_classification_yields.py tests/hardening/test_commit_order.py \
	  "tests/integration/test_classification.py::test_a_run_classifies_every_unclassified_item_with_a_few_queries_per_batch" \
	  "tests/integration/test_classification.py::test_the_pipelines_own_verdicts_are_judged_again_and_kept_beside_ours"

# The fuzz suite of bad input at forty times the default run's size (39,400 inputs; rows and links as many as before).
fuzz-long: setup-dev
	TRIAGE_FUZZ_FACTOR=40 $(BIN)/python -m pytest tests/hardening/test_fuzz.py

# The browser tests on a busy machine: the rest of the suite (and a CPU burner per core) runs alongside,
# to prove that no browser assertion depends on an idle machine. Prints the load the e2e tests ran under.
test-e2e-loaded: setup-dev browser emulator
	@$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/integration tests/app -m "not bigquery" \
	  >/tmp/triage-load.log 2>&1 & pids=$$!; \
	for i in $$(seq $$(nproc)); do timeout 1800 $(BIN)/python -c 'while True: pass' & pids="$$pids $$!"; done; \
	$(BIN)/python -m pytest tests/e2e; rc=$$?; \
	echo "load average during the run: $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	kill $$pids 2>/dev/null; wait 2>/dev/null; exit $$rc

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

# The browser tests drive Debian's chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# The load bench (bench/load.py) drives eight of Debian's chromium headless shells: the same pages drawn with a quarter
# less CPU than the full browser, on a machine the browsers share with the server.
load-browser:
	@command -v chromium-headless-shell >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium-headless-shell >/dev/null; \
	  else echo "The load bench needs Debian's chromium-headless-shell: sudo apt-get install chromium-headless-shell" >&2; exit 1; fi; }

# The Pub/Sub emulator for the re-run tests: Debian's google-cloud-cli-pubsub-emulator (the tests start it with
# `gcloud beta emulators pubsub start` on a free loopback port). Needs the Google Cloud CLI's apt source.
pubsub:
	@gcloud beta emulators pubsub --help >/dev/null 2>&1 && test -d "$$(dirname "$$(readlink -f "$$(command -v gcloud)")")/../platform/pubsub-emulator" || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq google-cloud-cli-pubsub-emulator >/dev/null; \
	  else echo "The re-run tests need the Pub/Sub emulator: sudo apt-get install google-cloud-cli-pubsub-emulator" >&2; exit 1; fi; }

# The BigQuery emulator for the BigQuery-path tests (local-bigquery 0.3.2 needs Python 3.13 and DuckDB
# 1.5.5 with its extensions from PyPI), in a venv of its own so its pins never meet the app's.
EMU := .venv-emulator
PY313 ?= $(shell for p in $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13 2>/dev/null) $$(command -v python3.13 2>/dev/null); do $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo $$p; break; }; done)

emulator: $(EMU)/.installed

$(EMU)/.installed: requirements-emulator.txt
	@test -n "$(PY313)" || { echo "The BigQuery emulator needs Python 3.13 (python3.13 on PATH, or pyenv's 3.13)." >&2; exit 1; }
	@test -x $(EMU)/bin/python || $(PY313) -m venv $(EMU)
	$(EMU)/bin/python -m pip install --quiet --upgrade pip
	$(EMU)/bin/python -m pip install --quiet -r requirements-emulator.txt
	$(EMU)/bin/python -c "import duckdb, glob, sys; [duckdb.execute(f\"INSTALL '{p}'\") for p in glob.glob(sys.prefix + '/lib/python*/site-packages/duckdb_extension_*/extensions/*/*.duckdb_extension')]"
	@touch $@

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lib

bench: setup-dev
	$(BIN)/python bench/overview.py
	$(BIN)/python bench/classify.py
	$(BIN)/python bench/incidents.py

clean:
	rm -rf $(VENV) $(EMU) .pytest_cache .mypy_cache .ruff_cache test-artifacts
