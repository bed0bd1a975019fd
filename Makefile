# The index of commands. Everything runs from the virtual environment in .venv/ (made by `make install`).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/datasets/nih-malaria-cells
FIELDS ?= ../shared/datasets/iml-malaria-fields
export PYTHONPATH := $(CURDIR)

.PHONY: install install-dev run manage test test-fast lint format train evaluate evaluate-fields bench-classifier bench-fields bench-e2e bench-uploads bench-load test-faults screenshots clean

# What running needs and no more: no TensorFlow, SciPy, scikit-learn or matplotlib.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# Tests, training, evaluation and benchmarks add the `training` and `dev` extras, and the command-line client
# (client/, its own package: `malaria-detect` in .venv/bin), which tests/test_client.py runs.
$(VENV)/.installed-dev: $(VENV)/.installed client/pyproject.toml
	$(PY) -m pip install --quiet -e ".[training,dev]"
	$(PY) -m pip install --quiet -e ./client
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Front-end bundles (Firebase JS SDK and the pages' scripts) from npm packages: no CDN at run time.
static/build/.built: node_modules/.installed $(wildcard frontend/*.js)
	npm run --silent build
	touch $@

# Browser tests drive Debian's Chromium with Playwright (Playwright's own browser download is not used).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The compose files are checked with `docker compose config` (tests/test_compose.py); no daemon is needed.
COMPOSE := /usr/bin/docker-compose
$(COMPOSE):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose

# PDF reports: WeasyPrint lays them out with Debian's Pango and a font; the tests read them back with poppler's
# pdftotext and pdftoppm. (`make run` needs none of it to start: only a report asked for needs Pango.)
PDFTOTEXT := /usr/bin/pdftotext
$(PDFTOTEXT):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		poppler-utils fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

install: $(VENV)/.installed node_modules/.installed static/build/.built

install-dev: install $(VENV)/.installed-dev

# Everything on this machine: Auth emulator with demo accounts, database, worker, web server.
run: install
	$(PY) -m malaria_site.run_local

# A management command as `make run` runs it (same database, development settings), after migrating:
# make manage ARGS=createsuperuser, make manage ARGS='create_lab "My Lab"' (see the README's Administration).
manage: $(VENV)/.installed
	$(PY) -m malaria_site.run_local manage $(ARGS)

# Against PostgreSQL and Redis on 127.0.0.1 (see tests/settings.py), the Auth emulator and a real worker.
test: install-dev $(CHROMIUM) $(COMPOSE) $(PDFTOTEXT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_DEBUG=1 DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest

# The quick layer (tests marked `pure`: rules, uploads validation, preprocessing, the engine on generated cells).
# Services on closed ports: a pure test that reached PostgreSQL or Redis would fail here.
test-fast: $(VENV)/.installed-dev
	TEST_DATABASE_URL=postgres://postgres@127.0.0.1:9/unreachable TEST_REDIS_CACHE_URL=redis://127.0.0.1:9/0 \
	TEST_REDIS_BROKER_URL=redis://127.0.0.1:9/1 $(PY) -m pytest -m pure -q

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Trains on NIH cells and IML field chips, calibrates and writes worker/model/ (11.8-13.2 minutes on earlier
# sessions' 2 cores, 11.8 on AVX-512 with AMX; an AVX2-only host takes about twice as long: docs/model.md).
train: install-dev
	$(PY) -m worker.training train --data $(DATA) --fields $(FIELDS)

evaluate: install-dev
	$(PY) -m worker.training evaluate --data $(DATA) --out out/evaluation $(if $(SPLIT),--split $(SPLIT))

# The whole-field pipeline (red-cell detection, chips, the shipped model) against boxed fields, as issue 8
# asks: make evaluate-fields DATA=DIR (a DATA given on the command line wins over FIELDS).
evaluate-fields: install-dev
	$(PY) -m worker.tools.evaluate_fields evaluate --out out/fields \
		--data $(if $(filter command line,$(origin DATA)),$(DATA),$(FIELDS))

bench-classifier: install-dev
	$(PY) -m worker.tools.bench_classifier --data $(DATA)

# 1280 x 960 JPEG field photographs in, every red cell found and classified out, on 2 cores.
bench-fields: install-dev
	$(PY) -m worker.tools.bench_fields --data $(if $(filter command line,$(origin DATA)),$(DATA),$(FIELDS))

bench-e2e: install-dev
	$(PY) -m worker.tools.bench_e2e --data $(DATA) --fields-data $(FIELDS)

# Hostile uploads (zip bombs, overlapping entries, pixel bombs, polyglots) against gunicorn: seconds per
# request and the web process's peak memory (issue 10: each refused in <= 1 s, peak <= 512 MB).
bench-uploads: install-dev
	$(PY) -m worker.tools.bench_uploads

# Faults against the running product (issue 10), on a PostgreSQL and a Redis of its own: a pool child killed
# mid-chunk, two workers, the whole worker killed, PostgreSQL stopped 20 s, Redis killed with its messages,
# uploads while Redis is down, duplicate uploads at once; cells sent, terminal, duplicated, unexpected 5xx and
# seconds to recover. About 6 minutes; not part of make test.
test-faults: install-dev
	$(PY) -m worker.tools.faults --data $(DATA)

# Concurrent batch clients (Locust, headless, 60 s) uploading cells and fields and reading results against
# gunicorn and a worker: requests/s, p95, 5xx, seconds until every image is classified.
bench-load: install-dev
	$(PY) -m worker.tools.bench_load --data $(DATA) --fields-data $(FIELDS)

clean:
	rm -rf out .pytest_cache .ruff_cache var/test-media static/build

# A PNG of every page at desktop and phone width, in out/screenshots (needs PostgreSQL and Redis, as tests).
screenshots: install-dev $(CHROMIUM) $(PDFTOTEXT)
	SCREENSHOT_DIR=out/screenshots $(PY) -m pytest tests/screenshot_pages.py -q -p no:cacheprovider
