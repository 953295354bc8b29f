# The platform team's entry points. `make test` is the README's test command
# and what .ci/run executes.
.DEFAULT_GOAL := help
VENV := .venv/bin
export PATH := $(CURDIR)/$(VENV):$(PATH)

.PHONY: help bootstrap test lint drift demo bench bench-service cluster

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

bootstrap: ## install the template's tooling into .venv
	scripts/bootstrap

# Lint first: it takes seconds, and CI (which runs only `make test`) must
# enforce it too.
# Three workers on two cores: much of the suite waits (on services, the
# cluster's controller, timeouts it proves), and a third worker uses that
# time (measured: CPU 79% busy with three). Groups go out longest first
# (tests/conftest.py, LONGEST_FIRST), not xdist's most-tests-first.
test: bootstrap lint ## lint, then the whole suite (starts its own PostgreSQL)
	$(VENV)/pytest -n 3 --dist loadgroup --no-loadscope-reorder $(if $(SLIPWAY_PYTEST_MARKERS),-m "$(SLIPWAY_PYTEST_MARKERS)")

# The deploy tests' Kubernetes control plane + Argo Rollouts, built from the Go
# module proxy (7-15 min cold on 2 cores, then cached outside the repo under
# ~/.cache/slipway/cluster/). `make test` builds it too when missing; this
# target does it up front, with the build's progress on the terminal.
cluster: bootstrap ## build or restore the test cluster's binaries (pins.yml `cluster`)
	$(VENV)/python -m tests.support.cluster.build

lint: bootstrap ## lint the template's own Python
	$(VENV)/ruff check extensions scripts tests
	$(VENV)/ruff format --check extensions scripts tests
	$(VENV)/mypy

drift: bootstrap ## fail when generated files drift from their sources (CI's drift job)
	$(VENV)/python scripts/self-ci --check
	$(VENV)/python scripts/relock-python --check
	$(VENV)/python scripts/relock-typescript --check
	$(VENV)/python scripts/regen-openapi --check
	$(VENV)/uv lock --check

demo: bootstrap ## generate a demo service from the defaults into ./demo-service
	$(VENV)/copier copy --trust --defaults --vcs-ref HEAD . demo-service

bench: bootstrap ## time copy and update renders
	$(VENV)/python scripts/bench

# ARGS="--ref v0.1.0" adds an older Python service; see scripts/bench-service.
bench-service: bootstrap ## load-test every stack's service on loopback (1 k and 1 M rows)
	$(VENV)/python scripts/bench-service $(ARGS)
