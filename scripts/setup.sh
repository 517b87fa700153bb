#!/usr/bin/env bash
# Everything a fresh machine needs: Debian tools for the model checker, the diagrams and the
# timeline's browser test, then a virtual environment with the package and its development tools.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v spin >/dev/null 2>&1 || need+=(spin)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
# spin writes its verifier in C (pan.c): without a C compiler the model checker cannot run.
{ command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; } || need+=(gcc)
# The PostgreSQL server: the store tests start a throwaway cluster with its initdb and pg_ctl.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
# Headless Chromium loads the timeline pages in the tests.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Node runs the TypeScript and XState exports in the tests (ts/: tsc, tsx, xstate).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} (apt-get)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages: ${need[*]} (the spin, diagram, PostgreSQL store, timeline and TypeScript checks need them; spin needs a C compiler)" >&2
  fi
fi

# The Node packages of the TypeScript tests, exactly as locked; skipped when that lock is installed.
if command -v npm >/dev/null 2>&1 && ! cmp -s ts/package-lock.json ts/node_modules/.installed-lock.json; then
  npm ci --prefix ts --no-audit --no-fund --loglevel=error >/dev/null
  cp ts/package-lock.json ts/node_modules/.installed-lock.json
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# Cache the package's bytecode now, as a wheel install does: an editable install run with
# PYTHONDONTWRITEBYTECODE would otherwise compile every module from source at each start.
.venv/bin/python -m compileall -q statemachine >/dev/null
