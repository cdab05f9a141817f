# Entry points. Each target installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
ENV := . scripts/env.sh

.PHONY: setup test train train-trajectories bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@$(ENV) && python -m pytest

STAMP := $(shell date +%Y%m%d_%H%M%S)
RUN ?= runs/hanger_$(STAMP)

# The main job: guided policy search on the hanger task, quick CPU preset, over the ROS graph
# (sim, controller and trainer nodes as processes; launch/hanger.launch.py via the bringup).
train: setup
	@$(ENV) && python -m gps_trainer.bringup run_dir:=$(RUN)

# The trajectory phase alone (linear-Gaussian controllers from the full state), about a minute.
train-trajectories: setup
	@$(ENV) && python -m gps_trainer.train_trajectories \
		--config config/hanger_trajectories.yaml --run-dir runs/hanger_trajectories_$(STAMP)

bench: setup
	@$(ENV) && for b in bench/*.py; do echo "== $$b"; python "$$b" || exit 1; done

clean:
	rm -rf build install log
