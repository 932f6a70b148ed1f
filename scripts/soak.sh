#!/usr/bin/env bash
# npm run soak: the fault-injection soak (issue 11). Both regions' daemons (`crr run`, an active
# and a standby process per region) on the two real Kafka clusters of scripts/kafka.sh, stores in
# PostgreSQL, backups in S3Proxy; every crr connection crosses a TCP proxy of the soak. A stream of
# `crr write` batches runs while seeded random faults are injected one at a time: SIGKILL and
# SIGSTOP/SIGCONT of the active mirror, replay and reseed processes, broker restarts, connections
# cut / blackholed / slowed to Kafka, PostgreSQL and S3, and sync-breaking operations on the
# primary (drop-all, import, reset). Then, faults stopped: `crr verify` EQUAL within a bound, every
# acknowledged event on DR exactly once (from the store and the remote topic), positions never
# backwards; a table of the faults injected and survived. Details: scripts/soak/soak.ts.
#
#   1. fetches Kafka and S3Proxy when missing; builds crr (dist/) and the soak (.cache/soak-dist)
#   2. the clusters need the PROXIED listener (scripts/kafka.sh, CRR_<NAME>_ADVERTISED_PORT): a
#      running cluster without it is restarted with it; stopped ones are started (and stopped
#      again at the end unless SOAK_KEEP_CLUSTERS=1); S3Proxy likewise
#   3. node .cache/soak-dist/scripts/soak/main.js: seed first, a line per fault, the table and
#      figures, JSON in .cache/soak-<timestamp>.json, logs in .cache/soak-<timestamp>/
# Exit: 0 passed, 1 a check failed (lost, duplicated, backwards, not EQUAL, a fault not survived).
#
# Environment:
#   SOAK_SECONDS (600)   fault phase, s          SOAK_SEED (random)   reruns a run exactly
#   SOAK_FAULTS (all)    kinds or prefixes, comma-separated, '-' excludes: all,-reset | net-,kill-
#   SOAK_EQUAL_TIMEOUT (300)  s allowed from the end of the faults to crr verify EQUAL
#   SOAK_BATCH_EVENTS (40)    events per crr write
#   SOAK_PG (postgres://postgres@127.0.0.1:5432/postgres)
#   CRR_PRIMARY_PORT, CRR_DR_PORT, CRR_S3_PORT     as for scripts/kafka.sh and scripts/s3.sh
#   CRR_PRIMARY_ADVERTISED_PORT, CRR_DR_ADVERTISED_PORT  the Kafka proxies' ports (port + 3)
set -euo pipefail
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
export CRR_PRIMARY_PORT=${CRR_PRIMARY_PORT:-19092}
export CRR_DR_PORT=${CRR_DR_PORT:-29092}
export CRR_PRIMARY_ADVERTISED_PORT=${CRR_PRIMARY_ADVERTISED_PORT:-$((CRR_PRIMARY_PORT + 3))}
export CRR_DR_ADVERTISED_PORT=${CRR_DR_ADVERTISED_PORT:-$((CRR_DR_PORT + 3))}
K="bash scripts/kafka.sh"

[[ -d node_modules ]] || bash scripts/ensure-deps.sh
$K fetch
bash scripts/s3.sh fetch
npm run --silent build
npx tsc -p scripts/soak/tsconfig.json

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
started=()
for name in primary dr; do
  if [[ $name == primary ]]; then port=$CRR_PRIMARY_PORT; else port=$CRR_DR_PORT; fi
  # the status is read whole first: with pipefail, `status | grep -q` fails when grep stops reading early
  status=$($K status)
  if grep -Eq "^$name +running" <<<"$status"; then
    if ! port_open $((port + 2)); then
      echo "soak: cluster $name runs without the PROXIED listener on $((port + 2)); restarting it with one"
      $K restart "$name"
    fi
  else
    $K up "$name"
    started+=("$name")
  fi
done
s3_started=0
s3_status=$(bash scripts/s3.sh status)
if ! grep -Eq '^s3 +running' <<<"$s3_status"; then
  bash scripts/s3.sh up
  s3_started=1
fi
cleanup() {
  [[ ${SOAK_KEEP_CLUSTERS:-0} == 1 ]] && return 0
  ((${#started[@]})) && $K down "${started[@]}" || true
  ((s3_started)) && bash scripts/s3.sh down || true
}
trap cleanup EXIT
node .cache/soak-dist/scripts/soak/main.js
