# make demo: synthesize app.py with the CDK CLI, then deploy it on a fresh local state (embedded moto).
# make plan / deploy / destroy: the local engine on app.py, keeping .cdk-iot-job-local/state.json.
# make test: the fast test set (make check runs all of it). All set up .venv (and node_modules) on first use: make demo, synth,
#   plan, deploy and destroy install requirements.txt only (the runtime and the [local] extra); make
#   test, check and bench add requirements-dev.txt (pytest, hypothesis, ruff, mypy, cfn-lint, ...).
# make check: the quality gates CI runs (.ci/run), in order, stopping at the first failure and
#   naming it: lint (ruff check, ruff format --check), types (mypy --strict), tests-cov (the suite,
#   with its cdk-nag and cfn-lint tests, under branch coverage with a 90% floor), wheel-check
#   (build the wheel, install it in a fresh venv, synthesize from it). Each gate is a target too.
# make wheel: build the wheel and sdist into dist/.
# make provider-template: the provider as a standalone CloudFormation template and its Lambda code zip,
#   into dist/, for deploys without the CDK (docs/provider-template.md).
# make bench: benchmark IotJob against AwsCustomResource, CfnJob and a bare boto3 floor (bench/run.py);
#   writes BENCHMARKS.md and fails when a goal is missed (about 3-6 minutes).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# The CDK CLI runs `python3 app.py`: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install venv dev-venv wheel demo test synth plan deploy destroy clean check lint types tests-cov wheel-check bench provider-template

install: $(VENV)/.dev-installed node_modules/.installed

# The runtime and the [local] extra: all `make demo` needs.
venv: $(VENV)/.installed
# Plus the development and quality-gate tools: `make test`, `make check`, `make bench`.
dev-venv: $(VENV)/.dev-installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: $(VENV)/.installed node_modules/.installed
	npx --no-install cdk synth --quiet --output cdk.out

demo: synth
	rm -rf .cdk-iot-job-local
	$(VENV)/bin/cdk-iot-job-local deploy --assembly cdk.out

plan deploy destroy: $(VENV)/.installed
	$(VENV)/bin/cdk-iot-job-local $@

# The fast set (about 4 minutes here): everything but the exhaustive suites, which make check adds
# (markers in pyproject.toml), and a tenth of the generated examples (tests/depth.py).
FAST_SET := not load and not wheel and not bench and not real_waits
# pytest-xdist: one worker per core (2 here); a test module stays on one worker, so its
# module-scoped synths run once. Ports are ephemeral and state lives in tmp_path, per worker.
PARALLEL ?= -n 2 --dist loadfile
test: $(VENV)/.dev-installed
	CDK_IOT_JOB_TEST_DEPTH=fast $(PY) -m pytest $(PARALLEL) -m "$(FAST_SET)" --durations=10

bench: $(VENV)/.dev-installed
	$(PY) bench/run.py

provider-template: $(VENV)/.installed
	$(PY) -m cdk_iot_job.provider_template --out dist

GATES := lint types tests-cov wheel-check

check: $(VENV)/.dev-installed
	@for gate in $(GATES); do \
		echo "==> gate $$gate"; start=$$(date +%s); \
		if ! $(MAKE) --no-print-directory $$gate; then \
			echo "==> FAILED: gate $$gate ($$(( $$(date +%s) - start ))s)" >&2; exit 1; \
		fi; \
		echo "==> passed: gate $$gate ($$(( $$(date +%s) - start ))s)"; \
	done; echo "==> all gates passed: $(GATES)"

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

# Coverage settings (branch, sources, the 90% floor) live in pyproject.toml.
tests-cov: $(VENV)/.dev-installed
	$(PY) -m pytest $(PARALLEL) --cov --cov-report=term-missing -m "not wheel" --durations=15

wheel-check: $(VENV)/.dev-installed
	$(PY) -m pytest -m wheel tests/system/test_wheel.py

# The wheel (and sdist) into dist/, built from this checkout: pip install dist/cdk_iot_job-*.whl.
wheel: $(VENV)/.dev-installed
	$(PY) -m build --wheel --sdist --no-isolation --outdir dist .

clean:
	rm -rf cdk.out .cdk-iot-job-local .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov build dist
