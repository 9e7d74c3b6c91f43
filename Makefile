# make demo: synthesize app.py with the CDK CLI, then deploy it on a fresh local state (embedded moto).
# make plan / deploy / destroy: the local engine on app.py, keeping .cdk-iot-job-local/state.json.
# make test: run the test suite. All set up .venv (and node_modules) on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# The CDK CLI runs `python3 app.py`: make it the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install demo test synth plan deploy destroy clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: $(VENV)/.installed node_modules/.installed
	npx --no-install cdk synth --quiet --output cdk.out

demo: synth
	rm -rf .cdk-iot-job-local
	$(PY) -m cdk_iot_job.local deploy --assembly cdk.out

plan deploy destroy: $(VENV)/.installed
	$(PY) -m cdk_iot_job.local $@

test: $(VENV)/.installed
	$(PY) -m pytest

clean:
	rm -rf cdk.out .cdk-iot-job-local .pytest_cache build dist
