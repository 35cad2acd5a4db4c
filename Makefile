# HSI Console — `make run` serves the console, `make test` runs lint, types and the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test test-postgres lint format types pytest bench clean
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres

$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "HSI Console needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	./scripts/run-console

test: lint types pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

types: $(VENV)/.dev
	DJANGO_ENV_FILE= DJANGO_DEBUG=true $(VENV)/bin/mypy .

# Two pytest-xdist workers by default (one per core of the CI machine); each starts its own Redis
# servers, consoles and browsers. PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.dev
	$(PY) -m pytest -n $(PYTEST_WORKERS)

# The database-backed tests once more on PostgreSQL (pytest-django creates and drops test_<name>);
# the archive's crash-safe claims and settles depend on the database's locking.
test-postgres: $(VENV)/.dev
	TEST_DATABASE_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest tests/test_console_pages.py tests/test_health.py tests/test_archive.py

bench: $(VENV)/.dev
	$(PY) bench/overview.py
	$(PY) bench/dlq.py
	$(PY) bench/streams.py
	$(PY) bench/live.py
	$(PY) bench/keyspace.py
	$(PY) bench/jobs_live.py

clean:
	rm -rf staticfiles .pytest_cache .mypy_cache .ruff_cache
