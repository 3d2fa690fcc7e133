# Firebreak — the model-failure SOP as Airflow DAGs.
#   make demo   set everything up and run the pricing incident end to end (SQLite, local files)
#   make test   lint, type check and the whole test suite (what CI runs)

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
SCENARIO ?= pricing
export FIREBREAK_HOME ?= $(CURDIR)/.firebreak

.PHONY: install demo test lint format typecheck unit e2e up mlflow-ui clean

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed  ## create .venv with the locked dependencies

demo: install  ## run a scenario end to end through the real incident_response DAG
	$(BIN)/firebreak demo --scenario $(SCENARIO)

# Test files run on two workers, the longest first (tests/conftest.py); TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2

test: install lint typecheck  ## lint, type check, then every test layer
	@# Bytecode up front: every task process, airflow and firebreak command the tests start would
	@# otherwise compile Firebreak's modules again where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q include dags plugins
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layer contract in .importlinter (docs/architecture.md)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy include/firebreak include/firebreak_dev

unit: install
	$(BIN)/python -m pytest tests/unit tests/dags

e2e: install
	$(BIN)/python -m pytest tests/e2e

up: install  ## the local stack on loopback: Airflow + alert intake, MLflow UI; prints URLs and the login
	$(BIN)/python -m firebreak_dev up

mlflow-ui: install  ## the MLflow UI on the demo's state: http://127.0.0.1:5000
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(FIREBREAK_HOME)/mlflow.db

clean:  ## forget the demo's state (keeps .venv)
	rm -rf $(FIREBREAK_HOME)
