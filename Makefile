# The two commands of the README: `make run` (server with demo data on a local Asterisk) and `make test`.
SHELL := /bin/bash
export CTI_CONFIG ?= $(CURDIR)/var/cti.toml
VENV := $(CURDIR)/.venv

.PHONY: run test setup lint unit real bench stop

run: setup
	$(VENV)/bin/cti serve

test: setup lint
	$(VENV)/bin/pytest

setup:
	bash scripts/setup.sh

lint:
	$(VENV)/bin/ruff check cti tickets tests bench
	$(VENV)/bin/mypy

unit:
	$(VENV)/bin/pytest tests/unit

real:
	$(VENV)/bin/pytest tests/real

bench:
	$(VENV)/bin/python bench/agi_roundtrip.py

stop:
	bash scripts/asterisk-sandbox.sh stop
	bash scripts/services.sh stop
