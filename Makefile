# campus-edge: `make demo` runs a simulated building end to end, `make test` runs the suite.
# Both install what is missing first (Debian packages need root, as on a fresh edge box).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBS := mosquitto mosquitto-clients mbpoll victoria-metrics chromium fonts-wqy-microhei sqlite3 systemd

.PHONY: setup debs demo test check bench clean

debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: debs $(STAMP)

demo: setup
	$(BIN)/campus-edge demo

test: setup
	$(BIN)/pytest -q -p no:cacheprovider

check: setup
	$(BIN)/ruff check gateway collectors rules dashboard_api simulators tests bench
	$(BIN)/ruff format --check gateway collectors rules dashboard_api simulators tests bench
	$(BIN)/mypy

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
