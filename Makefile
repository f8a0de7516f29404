# Two commands set everything up: `make serve` and `make test`.
# Both create .venv and install livedata with the exact versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test check bench lock clean image stack-images stack-secrets stack-test stack-up stack-down deploy-lint podman-clean

serve: $(VENV)/installed
	$(BIN)/livedata serve

test: $(VENV)/installed .venv-openapi/installed
	$(BIN)/pytest

check: $(VENV)/installed
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/installed
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python bench/service_overhead.py

# Refresh constraints.txt after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/livedata-lock && $(PYTHON) -m venv /tmp/livedata-lock
	/tmp/livedata-lock/bin/pip install -q ".[dev,bench]"
	/tmp/livedata-lock/bin/pip freeze --exclude livedata > constraints.txt

$(VENV)/installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

# The OpenAPI client generator the tests run (tests/web/test_openapi_client.py). Its own venv:
# its pins conflict with livedata's (typer).
.venv-openapi/installed: tools/openapi-client.txt
	$(PYTHON) -m venv .venv-openapi
	.venv-openapi/bin/pip install -q -r tools/openapi-client.txt
	touch $@

clean:
	rm -rf $(VENV) .venv-openapi

# Container image and compose stack (docs/deploy.md). Here podman runs them, its store kept in
# deploy/.podman; ENGINE=docker builds the image and the secrets with a Docker engine instead.
DEPLOY_TOOLS := deploy/.tools

image:
	deploy/image.sh

# The services' stand-in images (deploy/local-images): no image can be pulled on our machines.
stack-images:
	deploy/local-images/build.sh

stack-secrets: image
	deploy/secrets.sh $${ENGINE:-podman} localhost/livedata:latest

# Start the stack, smoke-test it through nginx on a free 127.0.0.1 port, tear it down.
stack-test: image stack-images stack-secrets $(DEPLOY_TOOLS)/installed
	deploy/stack.sh test

# The same stack left running on 127.0.0.1:8080 (LIVEDATA_STACK_PORT), until make stack-down.
stack-up: image stack-images stack-secrets $(DEPLOY_TOOLS)/installed
	deploy/stack.sh up

stack-down: $(DEPLOY_TOOLS)/installed
	deploy/stack.sh down

# Offline checks of the deployment files (CI runs them): compose file, Containerfiles, manifests.
deploy-lint: $(DEPLOY_TOOLS)/installed
	deploy/lint.sh

$(DEPLOY_TOOLS)/installed: deploy/requirements.txt
	$(PYTHON) -m venv $(DEPLOY_TOOLS)
	$(DEPLOY_TOOLS)/bin/pip install -q -r deploy/requirements.txt
	touch $@

# Remove podman's scratch store (images, containers, volumes) and the stack's secrets.
podman-clean:
	bash -c '. deploy/local-images/podman-env.sh && podman system reset --force'
	rm -rf deploy/.podman deploy/secrets
