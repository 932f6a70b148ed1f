#!/usr/bin/env bash
# npm run demo: the whole DR pipeline of crr on a real public dataset, on two real Kafka clusters.
#
#  1. starts the clusters `primary` (127.0.0.1:19092) and `dr` (127.0.0.1:29092); removes what a
#     previous demo left (its daemons, topics and stores)
#  2. starts one `crr run` daemon per region: on the primary, replay of its change topics into its
#     store; on dr, the mirror primary->dr plus replay of the remote topics into the DR store,
#     fenced so that applications can only read it
#  3. loads the dataset (GeoNames cities, OpenFlights airports, ISO countries: ~244k change
#     events) into the primary as an IMPORT (`crr admin import`: a sync-breaking event): the DR
#     side becomes OUTDATED, reseeds itself from a fresh backup of the primary in S3 (S3Proxy, from
#     scripts/s3.sh) and catches up with a live mix of updates, deletes and metadata changes
#     written meanwhile (progress bars); later a DROP_ALL and a new import, and the same again
#     (with PGlite stores, which cannot be reseeded across processes: `crr write` instead)
#  4. shows that the DR side refuses writes: `crr write` to dr (exit 4), and an application-role
#     INSERT/UPDATE/DELETE/CREATE on the DR store (PostgreSQL: permission denied)
#  5. ends with `crr verify`: positions, counts per type and a digest of both stores, EQUAL
# Stores: the machine's PostgreSQL when it answers (CRR_DEMO_PG, default
# postgres://postgres@127.0.0.1:5432/postgres), else PGlite files under .demo/ (no fence then,
# and the primary daemon is stopped before verify: a PGlite store is one process's database).
# The daemons keep running at the end (PostgreSQL case); the script prints how to stop them.
# Knobs: CRR_DEMO_PG, CRR_DEMO_LIMIT (cap the dataset), CRR_DEMO_LIVE_EVENTS, CRR_DEMO_DIR,
# CRR_DEMO_HTTP_PORT / CRR_DEMO_PRIMARY_HTTP_PORT, CRR_PRIMARY_PORT / CRR_DR_PORT.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
K="bash scripts/kafka.sh"
CRR="node bin/crr.js"
DEMO="${CRR_DEMO_DIR:-$ROOT/.demo}"   # CRR_DEMO_DIR: another folder (the demo test uses its own)
PRIMARY=127.0.0.1:${CRR_PRIMARY_PORT:-19092}
DR=127.0.0.1:${CRR_DR_PORT:-29092}
DR_PORT=${CRR_DEMO_HTTP_PORT:-9464}
PRIMARY_PORT=${CRR_DEMO_PRIMARY_HTTP_PORT:-9465}
LIVE_EVENTS=${CRR_DEMO_LIVE_EVENTS:-30000}
LIMIT=${CRR_DEMO_LIMIT:-}          # cap the dataset (events), e.g. for a quick run
PG=${CRR_DEMO_PG:-postgres://postgres@127.0.0.1:5432/postgres}
mkdir -p "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. starting the clusters, removing a previous demo"
# the demo dataset generator (demo/dataset.ts) is not part of the crr package: compiled here when stale
if [ ! -f .cache/demo-dist/demo/dataset.js ] || [ demo/dataset.ts -nt .cache/demo-dist/demo/dataset.js ]; then npm run --silent build:demo; fi
$K up
for pidfile in "$DEMO"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping $(basename "$pidfile" .pid) (pid $pid)"
    kill -TERM "$pid" || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
done
delete_topics() { # bootstrap topics...
  local bs=$1; shift
  for t in "$@"; do $K tool kafka-topics --bootstrap-server "$bs" --delete --if-exists --topic "$t" >/dev/null 2>&1 || true; done
  for _ in $(seq 1 60); do
    local left; left=$($K tool kafka-topics --bootstrap-server "$bs" --list 2>/dev/null | grep -Fx -f <(printf '%s\n' "$@") || true)
    [ -z "$left" ] && return 0
    sleep 0.5
  done
}
delete_topics "$PRIMARY" graph.data graph.metadata heartbeats crr-cluster-state.internal crr-dead-letters.internal
delete_topics "$DR" primary.graph.data primary.graph.metadata primary.heartbeats crr-offsets.primary.internal crr-cluster-state.internal crr-dead-letters.internal

if node -e "const pg=require('pg');const c=new pg.Client({connectionString:process.argv[1],connectionTimeoutMillis:3000});c.connect().then(()=>c.query('DROP SCHEMA IF EXISTS crr_demo_primary CASCADE; DROP SCHEMA IF EXISTS crr_demo_dr CASCADE')).then(()=>c.end()).then(()=>process.exit(0),()=>process.exit(1))" "$PG" 2>/dev/null; then
  STORES=postgres
  PRIMARY_STORE="{ type: postgres, connectionString: \"$PG\", schema: crr_demo_primary }"
  DR_STORE="{ type: postgres, connectionString: \"$PG\", schema: crr_demo_dr, appRole: crr_demo_app, replayRole: crr_demo_replay }"
  echo "stores: PostgreSQL at $PG (schemas crr_demo_primary, crr_demo_dr)"
  bash scripts/s3.sh up
  S3_ENDPOINT=http://127.0.0.1:${CRR_S3_PORT:-19000}
  node scripts/demo/bucket.mjs "$S3_ENDPOINT" crr-demo
  BACKUP="backup: { repository: { type: s3, bucket: crr-demo, prefix: \"demo-$(date +%s)\", endpoint: \"$S3_ENDPOINT\", forcePathStyle: true, accessKeyId: crr, secretAccessKey: crr-secret-key } }"
else
  STORES=pglite
  rm -rf "$DEMO/store-primary" "$DEMO/store-dr"
  PRIMARY_STORE="{ type: pglite, dataDir: \"$DEMO/store-primary\" }"
  DR_STORE="{ type: pglite, dataDir: \"$DEMO/store-dr\" }"
  BACKUP=""
  echo "stores: PGlite under .demo/ (PostgreSQL at $PG does not answer)"
fi

cat > "$DEMO/crr.yaml" <<YAML
clusters:
  primary:
    bootstrapServers: ["$PRIMARY"]
    changeTopics: { data: graph.data, metadata: graph.metadata, dataPartitions: 6 }
    store: $PRIMARY_STORE
    $BACKUP
  dr:
    bootstrapServers: ["$DR"]
    store: $DR_STORE
mirror:
  flows:
    - source: primary
      target: dr
      topics: { include: ["graph\\\\..*"] }
      targetCompression: lz4
      topicRefreshIntervalMs: 2000
replay:
  lagPollIntervalMs: 500
http: { host: 127.0.0.1, port: $DR_PORT }
YAML

step "2. crr run: a daemon per region (logs: .demo/primary.log, .demo/dr.log)"
nohup $CRR run --config "$DEMO/crr.yaml" --cluster primary --http-port "$PRIMARY_PORT" > "$DEMO/primary.log" 2>&1 &
echo $! > "$DEMO/primary.pid"
nohup $CRR run --config "$DEMO/crr.yaml" --cluster dr > "$DEMO/dr.log" 2>&1 &
echo $! > "$DEMO/dr.pid"
echo "primary daemon pid $(cat "$DEMO/primary.pid") (http://127.0.0.1:$PRIMARY_PORT/status), dr daemon pid $(cat "$DEMO/dr.pid") (http://127.0.0.1:$DR_PORT/status)"

if [ "$STORES" = postgres ]; then
  step "3. the dataset arrives on the primary as an IMPORT (crr admin import): a sync-breaking event"
  node -e "import('./.cache/demo-dist/demo/dataset.js').then((m) => { const s = m.datasetSummary(); console.log('dataset:', JSON.stringify(s)); })" || true
  { node scripts/demo/events.mjs schema; node scripts/demo/events.mjs dataset ${LIMIT:+--limit "$LIMIT"}; } > "$DEMO/dataset.ndjson"
  import_dataset() { # reason
    $CRR admin import --config "$DEMO/crr.yaml" --cluster primary --file "$DEMO/dataset.ndjson" --reason "$1" --execute
  }
  live() { # count: a live mix through crr write while the DR side detects the break, reseeds from S3 and catches up
    node scripts/demo/events.mjs live --seed "$(date +%s)" --count "$1" ${LIMIT:+--limit "$LIMIT"} | $CRR write --config "$DEMO/crr.yaml" --cluster primary > "$DEMO/live.log" 2>&1 &
    local pid=$!
    node scripts/demo/progress.mjs "$PRIMARY_PORT" "$DR_PORT" 900 "$pid"
    wait $pid || { cat "$DEMO/live.log"; exit 1; }
    cat "$DEMO/live.log"
  }
  for _ in $(seq 1 120); do # the primary's daemon has created the change topics and replays them
    curl -sf "http://127.0.0.1:$PRIMARY_PORT/status" | grep -q '"state": "active"' && break
    sleep 0.5
  done
  import_dataset "initial load of the demo dataset"
  echo "dr: IMPORT marker -> OUTDATED -> reseed from a fresh backup of the primary in S3 -> replay resumes; meanwhile $LIVE_EVENTS live events"
  live "$LIVE_EVENTS"
  curl -s "http://127.0.0.1:$DR_PORT/status" | node -e "let t='';process.stdin.on('data',d=>t+=d).on('end',()=>{const r=JSON.parse(t).replay;console.log('dr:', r.clusterState.state, 'epoch', r.clusterState.epoch, '-', r.clusterState.reason, r.lastReseed ? '(reseed took ' + r.lastReseed.seconds.toFixed(1) + ' s, ' + r.lastReseed.records + ' records)' : '')})"

  step "3b. later: DROP_ALL and a new import on the primary; the DR side reseeds again"
  $CRR admin drop-all --config "$DEMO/crr.yaml" --cluster primary --reason "demo: start over" --execute
  import_dataset "reload after drop-all"
  live "$((LIVE_EVENTS / 2))"
  curl -s "http://127.0.0.1:$DR_PORT/status" | node -e "let t='';process.stdin.on('data',d=>t+=d).on('end',()=>{const r=JSON.parse(t).replay;console.log('dr:', r.clusterState.state, 'epoch', r.clusterState.epoch, '-', r.clusterState.reason)})"
  $CRR backup list --config "$DEMO/crr.yaml" --cluster primary
else
  step "3. the dataset into the primary, as change events (crr write)"
  node -e "import('./.cache/demo-dist/demo/dataset.js').then((m) => { const s = m.datasetSummary(); console.log('dataset:', JSON.stringify(s)); })" || true
  { node scripts/demo/events.mjs schema; node scripts/demo/events.mjs dataset ${LIMIT:+--limit "$LIMIT"}; } | $CRR write --config "$DEMO/crr.yaml" --cluster primary > "$DEMO/load.log" 2>&1 &
  LOAD=$!
  node scripts/demo/progress.mjs "$PRIMARY_PORT" "$DR_PORT" 900 "$LOAD"
  wait $LOAD || { cat "$DEMO/load.log"; exit 1; }
  cat "$DEMO/load.log"
  echo "live mix: $LIVE_EVENTS updates, deletes and metadata changes while the daemons replicate"
  node scripts/demo/events.mjs live --seed "$(date +%s)" --count "$LIVE_EVENTS" ${LIMIT:+--limit "$LIMIT"} | $CRR write --config "$DEMO/crr.yaml" --cluster primary > "$DEMO/live.log" 2>&1 &
  LIVE=$!
  node scripts/demo/progress.mjs "$PRIMARY_PORT" "$DR_PORT" 600 "$LIVE"
  wait $LIVE || { cat "$DEMO/live.log"; exit 1; }
  cat "$DEMO/live.log"
fi
echo
$CRR status --config "$DEMO/crr.yaml" || true

step "4. the DR side is read-only"
set +e
$CRR write --config "$DEMO/crr.yaml" --cluster dr <<< '{"op":"UPSERT_VERTEX","vertex":{"type":"City","id":"intruder"},"attributes":{}}'
echo "crr write to dr: exit $? (4 = refused; nothing reached dr's topics)"
set -e
if [ "$STORES" = postgres ]; then
  node scripts/demo/fence-check.mjs "${PG/postgres@/crr_demo_app@}" crr_demo_dr
else
  echo "  (PGlite stores have no roles: the DR store is written only by the daemon that holds it)"
fi

step "5. crr verify: the primary's store and the DR store at a common position"
if [ "$STORES" = pglite ]; then
  echo "stopping both daemons first: verify opens the PGlite stores itself"
  for r in primary dr; do kill -TERM "$(cat "$DEMO/$r.pid")"; done
  for r in primary dr; do while kill -0 "$(cat "$DEMO/$r.pid")" 2>/dev/null; do sleep 0.5; done; rm -f "$DEMO/$r.pid"; done
fi
$CRR verify --config "$DEMO/crr.yaml" --timeout-ms 120000

if [ "$STORES" = postgres ]; then cat <<TXT

Both daemons keep running, replicating anything new written to the primary:
  write:    echo '{"op":"UPSERT_VERTEX","vertex":{"type":"City","id":"x"},"attributes":{}}' | node bin/crr.js write --config .demo/crr.yaml --cluster primary
  status:   http://127.0.0.1:$DR_PORT/status   metrics: http://127.0.0.1:$DR_PORT/metrics
  compare:  node bin/crr.js verify --config .demo/crr.yaml
Stop everything:
  kill $(cat "$DEMO/primary.pid") $(cat "$DEMO/dr.pid") && npm run clusters:down
TXT
fi
echo "demo: the DR store equals the primary's"
echo "this demo runs unsecured (plaintext Kafka, no ACLs) for a first look; to run crr secured (TLS, SASL, Kafka ACLs, one config per region) see README \"Security\" and docs/runbooks/first-setup.md section 8"
