# Entry points. Each target installs what it needs first (scripts/setup.sh is idempotent).
SHELL := /bin/bash
ENV := . scripts/env.sh

.PHONY: setup test train bench clean

setup:
	@bash scripts/setup.sh

test: setup
	@$(ENV) && python -m pytest

train: setup
	@$(ENV) && python -m gps_trainer.smoke

bench: setup
	@$(ENV) && python bench/sample_transfer.py

clean:
	rm -rf build install log
