# Two commands on a fresh machine: `make run` serves the sample building, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STREAM_PORT ?= 8001
# gunicorn's rule of thumb: two workers per core, plus one.
WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) + 1 )))

.PHONY: install run serve test lint format migrate clean apicheck test-browser fleet cluster test-cluster

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

migrate: install
	$(BIN)/python manage.py migrate --no-input

# Sets up everything, loads the sample building and its events, and serves on http://$(HOST):$(PORT): the API,
# the dashboard and the live stream, from one uvicorn process (config.asgi).
run: migrate
	$(BIN)/python manage.py init_data
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --no-access-log --timeout-graceful-shutdown 5

# The production server: gunicorn's sync workers on $(PORT) for the API and the pages, and uvicorn on
# $(STREAM_PORT) for GET /stream, on the settings the environment selects (see README, "Serving").
serve: migrate
	@# The months ahead of the event log's and the occupancy rows' partitions (PostgreSQL); cron runs it daily too.
	$(BIN)/python manage.py history_partitions
	@# Production settings serve collectstatic's compressed, hashed copies; local ones read the apps' folders.
	if [ "$$DJANGO_SETTINGS_MODULE" = config.settings.production ]; then \
		$(BIN)/python manage.py collectstatic --no-input --verbosity 0; fi
	export PROMETHEUS_MULTIPROC_DIR=$$(mktemp -d -t occupancy-metrics.XXXXXX); \
	trap 'rm -rf "$$PROMETHEUS_MULTIPROC_DIR"; kill 0' EXIT; \
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(STREAM_PORT) --no-access-log --timeout-graceful-shutdown 5 & \
	$(BIN)/gunicorn config.wsgi --config config/gunicorn.py --bind $(HOST):$(PORT) --workers $(WORKERS) --graceful-timeout 30

test: install
	$(BIN)/pytest

# The benchmark suite (bench/): on SQLite, or on PostgreSQL with DATABASE_URL; writes BENCHMARKS.md.
bench: install
	$(BIN)/python -m bench

# A compressed day of a DPU fleet against gunicorn (bench/fleet.py), ending in occupancy_check; writes its
# database's "Fleet day" section of BENCHMARKS.md. `python -m bench.fleet --help` for the sizes.
fleet: install
	$(BIN)/python -m bench.fleet $(FLEET_ARGS)

# Several app servers and one database on this machine (cluster/): a PostgreSQL primary and a standby, pgbouncer in
# session mode, two gunicorn app servers, uvicorn for /stream and nginx in front; Ctrl-C stops it all. Installs
# Debian's nginx and pgbouncer with apt-get if missing. `make fleet FLEET_ARGS="--url …"` targets it (README).
cluster: install
	$(BIN)/python -m cluster

# cluster/tests alone (`make test` runs them too): requests through nginx to both app servers, pgbouncer in the
# path, a small fleet day, and nothing left running.
test-cluster: install
	$(BIN)/pytest cluster -p no:cacheprovider

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# Schemathesis against a real server on the sample building (.ci/apicheck): every check, a bounded run.
apicheck: install
	bash .ci/apicheck

# The dashboard in headless Chromium (browser/, .ci/browser): Debian's chromium, installed with apt-get if missing.
test-browser: install
	bash .ci/browser

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3.test apicheck.sqlite3 .pytest_cache .ruff_cache .hypothesis build staticfiles
