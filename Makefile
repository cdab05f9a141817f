# Entry points. Each target installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
ENV := . scripts/env.sh

.PHONY: setup test train bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@$(ENV) && python -m pytest

RUN ?= runs/hanger_trajectories_$(shell date +%Y%m%d_%H%M%S)

train: setup
	@$(ENV) && python -m gps_trainer.train_trajectories \
		--config config/hanger_trajectories.yaml --run-dir $(RUN)

bench: setup
	@$(ENV) && for b in bench/*.py; do echo "== $$b"; python "$$b" || exit 1; done

clean:
	rm -rf build install log
