#!/usr/bin/env bash
# npm run demo: crr mirroring real traffic between two real Kafka clusters, exactly once.
#
#  1. starts the clusters `primary` (127.0.0.1:19092) and `dr` (127.0.0.1:29092)
#  2. creates the change topics graph.data (6 partitions) and graph.metadata (1) on the primary
#  3. drives traffic: Kafka's own kafka-producer-perf-test (zstd batches) and keyed records with
#     headers from kafka-console-producer
#  4. runs `crr mirror` with a progress display while more traffic arrives
#  5. checks independently, with Kafka's console consumer: record counts and an
#     order-independent digest of (partition, key, value, headers) equal on both sides
#     (crr's provenance headers crr.* are left out of the digest: they are what crr adds)
# The mirror keeps running at the end; the script prints how to stop everything.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
K="bash scripts/kafka.sh"
DEMO="$ROOT/.demo"
PRIMARY=127.0.0.1:${CRR_PRIMARY_PORT:-19092}
DR=127.0.0.1:${CRR_DR_PORT:-29092}
PORT=${CRR_DEMO_HTTP_PORT:-9464}
PERF_RECORDS=${CRR_DEMO_RECORDS:-100000}
LIVE_RECORDS=${CRR_DEMO_LIVE_RECORDS:-50000}
KEYED_RECORDS=${CRR_DEMO_KEYED_RECORDS:-5000}
mkdir -p "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. starting the clusters"
$K up

if [ -f "$DEMO/mirror.pid" ] && kill -0 "$(cat "$DEMO/mirror.pid")" 2>/dev/null; then
  step "stopping the mirror of a previous demo"
  kill -TERM "$(cat "$DEMO/mirror.pid")" || true
  for _ in $(seq 1 60); do kill -0 "$(cat "$DEMO/mirror.pid")" 2>/dev/null || break; sleep 0.5; done
fi

step "2. fresh change topics on the primary (a previous demo's topics are deleted)"
delete_topics() { # bootstrap topics...
  local bs=$1; shift
  for t in "$@"; do $K tool kafka-topics --bootstrap-server "$bs" --delete --if-exists --topic "$t" >/dev/null 2>&1 || true; done
  for _ in $(seq 1 60); do
    local left; left=$($K tool kafka-topics --bootstrap-server "$bs" --list 2>/dev/null | grep -Fx -f <(printf '%s\n' "$@") || true)
    [ -z "$left" ] && return 0
    sleep 0.5
  done
}
delete_topics "$PRIMARY" graph.data graph.metadata heartbeats
delete_topics "$DR" primary.graph.data primary.graph.metadata primary.heartbeats crr-offsets.primary.internal
$K tool kafka-topics --bootstrap-server "$PRIMARY" --create --topic graph.data --partitions 6 --config retention.ms=604800000
$K tool kafka-topics --bootstrap-server "$PRIMARY" --create --topic graph.metadata --partitions 1 --config cleanup.policy=delete

step "3. traffic: $PERF_RECORDS records from kafka-producer-perf-test (zstd), $KEYED_RECORDS keyed records with headers"
$K tool kafka-producer-perf-test --bootstrap-server "$PRIMARY" --topic graph.data --num-records "$PERF_RECORDS" --record-size 512 --throughput -1 \
  --command-property compression.type=zstd --command-property linger.ms=20 --command-property batch.size=262144 --command-property acks=all
# keyed records with headers: "h1:v1,h2:v2<TAB>key<TAB>value"
awk -v n="$KEYED_RECORDS" 'BEGIN { ops[0]="CREATE_VERTEX_TYPE"; ops[1]="CREATE_USER"; ops[2]="INSTALL_QUERY"; ops[3]="DROP_QUERY";
  for (i = 0; i < n; i++) printf "op:%s,seq:%d,origin:demo\tentity-%d\t{\"v\":1,\"seq\":%d,\"op\":\"%s\"}\n", ops[i%4], i, i%500, i, ops[i%4] }' > "$DEMO/keyed.txt"
$K tool kafka-console-producer --bootstrap-server "$PRIMARY" --topic graph.metadata \
  --reader-property parse.key=true --reader-property parse.headers=true --reader-property key.separator=$'\t' --reader-property headers.delimiter=$'\t' \
  --command-property compression.type=gzip < "$DEMO/keyed.txt"

step "4. crr mirror primary->dr (log: .demo/mirror.log, metrics: http://127.0.0.1:$PORT/metrics)"
cat > "$DEMO/crr.yaml" <<YAML
clusters:
  primary: { bootstrapServers: ["$PRIMARY"] }
  dr: { bootstrapServers: ["$DR"] }
mirror:
  flows:
    - source: primary
      target: dr
      topics: { include: ["graph\\\\..*"] }
      targetCompression: lz4
http: { host: 127.0.0.1, port: $PORT }
YAML
nohup node bin/crr.js mirror --config "$DEMO/crr.yaml" > "$DEMO/mirror.log" 2>&1 &
echo $! > "$DEMO/mirror.pid"
echo "mirror pid $(cat "$DEMO/mirror.pid")"
# live traffic while the mirror catches up
$K tool kafka-producer-perf-test --bootstrap-server "$PRIMARY" --topic graph.data --num-records "$LIVE_RECORDS" --record-size 256 --throughput 20000 \
  --command-property compression.type=snappy --command-property acks=all > "$DEMO/live-producer.log" 2>&1 &
LIVE=$!
sleep 1
node scripts/demo-progress.mjs "$PORT" 300 graph.data graph.metadata
wait $LIVE
node scripts/demo-progress.mjs "$PORT" 120 graph.data graph.metadata
echo
node bin/crr.js status --config "$DEMO/crr.yaml" || true

step "5. independent check with kafka-console-consumer (read_committed)"
# prints "partition<TAB>headers<TAB>key<TAB>value"; crr.* headers are dropped before hashing
dump() { # bootstrap topic out
  $K tool kafka-console-consumer --bootstrap-server "$1" --topic "$2" --from-beginning --isolation-level read_committed \
    --timeout-ms 10000 --formatter-property print.partition=true --formatter-property print.headers=true --formatter-property print.key=true \
    --formatter-property print.value=true 2>/dev/null \
  | grep '^Partition:' \
  | awk -F'\t' 'BEGIN{OFS="\t"} { n=split($2, h, ","); out=""; for (i=1;i<=n;i++) if (h[i] !~ /^crr\./) out = out (out==""?"":",") h[i]; if (out=="") out="NO_HEADERS"; $2=out; print }' > "$3"
}
fail=0
for t in graph.data graph.metadata; do
  dump "$PRIMARY" "$t" "$DEMO/source-$t.txt"
  dump "$DR" "primary.$t" "$DEMO/target-$t.txt"
  sc=$(wc -l < "$DEMO/source-$t.txt"); tc=$(wc -l < "$DEMO/target-$t.txt")
  sd=$(sort "$DEMO/source-$t.txt" | sha256sum | cut -c1-16); td=$(sort "$DEMO/target-$t.txt" | sha256sum | cut -c1-16)
  verdict=EQUAL; { [ "$sc" = "$tc" ] && [ "$sd" = "$td" ]; } || { verdict=DIFFERENT; fail=1; }
  printf '%-16s primary: %7d records, digest %s | dr (primary.%s): %7d records, digest %s  => %s\n' "$t" "$sc" "$sd" "$t" "$tc" "$td" "$verdict"
done
cat <<TXT

The mirror is still running (pid $(cat "$DEMO/mirror.pid")), replicating anything new on the primary:
  metrics:  http://127.0.0.1:$PORT/metrics     status: http://127.0.0.1:$PORT/status
  lag:      node bin/crr.js status --config .demo/crr.yaml
Stop everything:
  kill $(cat "$DEMO/mirror.pid") && npm run clusters:down
TXT
if [ "$fail" = 1 ]; then echo "demo: the two sides DIFFER" >&2; exit 1; fi
echo "demo: both sides are equal"
