#!/usr/bin/env bash
# Checks and unit-tests the Prometheus alert rules in config/prometheus/ with promtool.
# Installs Debian's `prometheus` package (which ships promtool) when promtool is missing and
# this runs as root; otherwise says what to install and exits 3.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing promtool (Debian package prometheus)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "promtool is missing: install it with 'apt-get install prometheus' (Debian) or from prometheus.io" >&2
    exit 3
  fi
fi
promtool check rules config/prometheus/crr-alerts.yml
promtool test rules config/prometheus/crr-alerts.test.yml
