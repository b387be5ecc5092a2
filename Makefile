# Sijill: `make demo` runs the gateway on embedded defaults; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint install bench bench-smoke soak clean system-packages-test system-packages-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

# The Debian packages each target needs, installed when missing (root with apt), else one line
# saying how; .ci/run goes through the same step.
system-packages-test system-packages-demo:
	scripts/system-packages $(@:system-packages-%=%)

demo: system-packages-demo $(STAMP)
	$(BIN)/sijill demo

# The local PostgreSQL, when one answers, unless SIJILL_TEST_DATABASE_URL says otherwise.
LOCAL_PG := postgresql+psycopg://postgres@127.0.0.1:5432/test

test: system-packages-test $(STAMP)
	@if [ -z "$$SIJILL_TEST_DATABASE_URL" ] && command -v pg_isready >/dev/null \
	    && pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "PostgreSQL tests against $(LOCAL_PG)"; \
	  export SIJILL_TEST_DATABASE_URL="$(LOCAL_PG)"; \
	fi; \
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# Everyday work: every test but those marked slow (crash-and-resume runs); CI runs them all.
test-fast:
	$(MAKE) test PYTEST_ARGS='-m "not slow" $(PYTEST_ARGS)'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCHES ?= vault audit policy enrol scoring oauth storekit gateway batch ratelimit

# PostgreSQL figures come from the local server unless SIJILL_TEST_DATABASE_URL names one.
bench: $(STAMP)
	@if [ -z "$$SIJILL_TEST_DATABASE_URL" ]; then export SIJILL_TEST_DATABASE_URL="$(LOCAL_PG)"; fi; \
	for b in $(BENCHES); do $(BIN)/python bench/$$b.py || exit 1; done

# Every benchmark once at tiny sizes (about two minutes): they must run and report their ratios.
bench-smoke: $(STAMP)
	@if [ -z "$$SIJILL_TEST_DATABASE_URL" ] && command -v pg_isready >/dev/null \
	    && pg_isready -q -h 127.0.0.1 -p 5432; then export SIJILL_TEST_DATABASE_URL="$(LOCAL_PG)"; fi; \
	$(BIN)/python bench/smoke.py

# Five minutes at 70 % of the measured capacity (not in CI); its last result is in
# docs/performance.md.
soak: $(STAMP)
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .sijill .pytest_cache .mypy_cache .ruff_cache
