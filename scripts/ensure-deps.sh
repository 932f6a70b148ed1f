#!/usr/bin/env bash
# Installs node dependencies (npm ci) when node_modules is missing or older than
# package-lock.json, and builds dist/ when it is missing. Used by `npm run demo` and
# `npm run bench`, so that a fresh clone needs no other step.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
if [ ! -f dist/cli/main.js ]; then
  echo "== building crr (tsc)"
  npm run build
fi
