#!/usr/bin/env bash
# The project's test command: set up, then the test suite, the type check and the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
# One worker per core; a test file stays on one worker, so its module fixtures run once.
.venv/bin/python -m pytest -n auto --dist loadfile
.venv/bin/python -m mypy --strict statemachine
# The layers contract in pyproject.toml: every import points down (tests/project/test_layers.py adds: no cycles).
.venv/bin/lint-imports
.venv/bin/python -m ruff check .
echo "all checks passed"
