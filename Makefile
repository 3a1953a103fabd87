# Gantry — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export GANTRY_CONFIG_DIR := $(CURDIR)/configuration

.PHONY: help services build runner-image images cluster demo stop test bench reliability lint fmt

help:
	@echo "make demo          install/start services, build, run the example change"
	@echo "make test          install/start services, run the whole test suite"
	@echo "make stop          stop the api and worker started by make demo or make bench"
	@echo "make bench         benchmark a release build against this machine's limits (docs/benchmarks.md)"
	@echo "make reliability   fault scenarios against 2 apis + 3 workers under supervisord (docs/reliability.md)"
	@echo "make runner-image  build the offline base runner image (gantry-runner:local)"
	@echo "make images        build gantry-api:local and gantry-worker:local offline (deploy/images)"
	@echo "make cluster       2 apis + 3 workers as hosts in network namespaces; a partition run (docs/cluster.md)"
	@echo "make lint          cargo fmt --check and clippy -D warnings"

services:
	@bash scripts/services.sh

build: services
	cargo build --workspace --bins

runner-image: services
	@bash scripts/runner-image.sh

images: services
	@bash scripts/images.sh

demo: build runner-image
	@bash scripts/demo.sh

stop:
	@bash scripts/stop.sh

test: services runner-image
	@bash scripts/test.sh

bench: services runner-image
	@bash scripts/bench.sh

reliability: services runner-image
	@bash scripts/reliability.sh

cluster: services runner-image
	@bash scripts/cluster.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
