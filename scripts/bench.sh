#!/usr/bin/env bash
# npm run bench: two benchmarks on the local clusters of scripts/kafka.sh (primary 127.0.0.1:19092
# -> dr 127.0.0.1:29092): the mirror throughput of crr against MirrorMaker 2 (phases 1-6), and the
# replay throughput of crr into PostgreSQL and PGlite against plain batched inserts of the same
# rows into the same databases (phase 7); and backup/restore throughput of a 1M-entity PostgreSQL
# store through S3Proxy against the server's raw upload/download of the same bytes (phase 8,
# scripts/bench/backup.mjs; BENCH_BACKUP_ENTITIES, default 1000000).
# BENCH_MIRROR=0, BENCH_REPLAY=0 or BENCH_BACKUP=0 skips one of them.
#
#  1. `kafka.sh up`; a fresh source topic bench-<timestamp> on the primary
#  2. N records of S bytes with kafka-producer-perf-test (acks=all)        -> "producer"
#  3. kafka-consumer-perf-test reads all N records back                      -> "ceiling"
#  4. crr mirrors the topic; wall time from process start until /status shows
#     lag 0 on every partition and positions summing to N                    -> "crr"
#  5. MirrorMaker 2 (dedicated mode, connect-mirror-maker) mirrors the same topic; wall time
#     from process start until the remote topic holds N records               -> "MM2"
#     and MM2 with exactly-once source support (KIP-618/KIP-710), wall time until its
#     source offsets, committed in the same transactions as the records, cover N -> "MM2 EOS"
#  6. table + ratios on stdout, JSON in .bench/mirror-<timestamp>.json
#  7. replay (scripts/bench/replay.mjs, whose header details each step), on the primary only:
#     a. E deterministic change events (two vertex types: ~70% vertex upserts with 3-5
#        attributes over a large id space, ~20% edge upserts, ~10% vertex and edge deletes, plus
#        4 schema events) appended once with `crr write` to fresh change topics
#        crr-bench-replay-<timestamp>.data (BENCH_PARTITIONS partitions) and .metadata -> "writer"
#     b. per store type, `crr replay --exit-when-caught-up` into a fresh store (postgres: schema
#        crr_bench_<timestamp>; pglite: a dataDir under .bench/run-<timestamp>/replay/); wall
#        time from process start to exit                              -> "replay into <store>"
#        then (untimed) a check that the store holds exactly the rows the events leave
#     c. per store type, the ceiling: those rows inserted by one Node process with `pg` / PGlite
#        directly (no crr code) into fresh tables of the same kind of database, with the keys and
#        indexes of the store's migration: 5000 rows per multi-row INSERT, one transaction per
#        INSERT (VALUES with bind parameters, and jsonb_to_recordset; the faster counts);
#        events/s = E / insert time                                    -> "ceiling <store>"
#     d. table + ratios replay/ceiling on stdout, JSON in .bench/replay-<timestamp>.json; drops
#        the schemas, removes the PGlite directories, deletes its topics and consumer groups
#  8. deletes every topic (and consumer group) phases 1-6 created on both clusters, stops what
#     it started
#
# Environment:
#   BENCH_RECORDS (1000000)  BENCH_RECORD_SIZE (1024)  BENCH_PARTITIONS (6)
#   BENCH_TIMEOUT (1200)     seconds allowed for each wait (a perf tool, a mirror catch-up)
#   BENCH_MM2_EOS (1)        0 skips the exactly-once MM2 run
#   BENCH_MM2 (1)            0 skips both MM2 runs
#   BENCH_HTTP_PORT (0)      crr's /status port; 0 = any free port (read from crr's log)
#   BENCH_MM2_HEAP (-Xms256m -Xmx2g)  MM2's heap, as in Kafka's connect-mirror-maker.sh
#   BENCH_SETTLE (3)         seconds of rest between phases
#   BENCH_KEEP (0)           1 keeps the topics (for inspection; they are listed at the end),
#                            and the replay phase's schemas and PGlite directories
#   BENCH_CRR_LOG_LEVEL (info)  crr's log level (debug shows KafkaJS's own info lines)
#   BENCH_CRR_NODE_ARGS ()   extra node options for crr mirror and crr replay only, e.g.
#                            "--cpu-prof --cpu-prof-dir=.bench/prof"
#   BENCH_MIRROR (1)         0 skips the mirror benchmark (phases 1-6 but `kafka.sh up`, and 8)
#   BENCH_REPLAY (1)         0 skips the replay benchmark (phase 7)
#   BENCH_REPLAY_EVENTS (200000)  change events written and replayed (at least 10)
#   BENCH_REPLAY_STORES (postgres,pglite)  store types replayed into, comma-separated
#   BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/postgres)  the PostgreSQL server of the
#                            postgres store and its ceiling (schemas crr_bench_<timestamp>*)
#   CRR_PRIMARY_PORT, CRR_DR_PORT  as for scripts/kafka.sh
#
# Isolation (other tests use the same clusters at the same time): every name is unique to the
# run — the source topic, crr's source alias crrb<timestamp> (so its remote topic, positions
# topic, consumer group and transactional id are unique), MM2's Connect group and
# config/offset/status topics. MM2's remote topics are primary.<topic> and
# primaryeos.<topic>; names MM2 shares between runs (heartbeats, primary.heartbeats,
# primary.checkpoints.internal, mm2-offset-syncs.dr.internal, ...) are deleted only if they
# did not exist before this run. The replay phase uses its own change topics, dead-letter topic
# (crr-bench-replay-<timestamp>.*), cluster aliases rbpg<timestamp> and rbpglite<timestamp> (so
# its own replay consumer groups) and schemas; it leaves tombstones for its aliases in the shared
# crr-cluster-state.internal. The clusters themselves are only ever started (`up`).
#
# Logs, configs and per-phase results: .bench/run-<timestamp>/ (git-ignored); the replay
# phase's in .bench/run-<timestamp>/replay/.
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
KAFKA_SH="$ROOT/scripts/kafka.sh"
HELPER="$ROOT/scripts/bench/bench.mjs"

RECORDS=${BENCH_RECORDS:-1000000}
SIZE=${BENCH_RECORD_SIZE:-1024}
PARTITIONS=${BENCH_PARTITIONS:-6}
TIMEOUT=${BENCH_TIMEOUT:-1200}
RUN_MM2=${BENCH_MM2:-1}
RUN_MM2_EOS=${BENCH_MM2_EOS:-1}
HTTP_PORT=${BENCH_HTTP_PORT:-0}
MM2_HEAP=${BENCH_MM2_HEAP:--Xms256m -Xmx2g}
SETTLE=${BENCH_SETTLE:-3}
KEEP=${BENCH_KEEP:-0}
CRR_LOG_LEVEL=${BENCH_CRR_LOG_LEVEL:-info}
read -r -a CRR_NODE_ARGS <<<"${BENCH_CRR_NODE_ARGS:-}"
RUN_MIRROR=${BENCH_MIRROR:-1}
RUN_REPLAY=${BENCH_REPLAY:-1}
RUN_BACKUP=${BENCH_BACKUP:-1}
REPLAY_EVENTS=${BENCH_REPLAY_EVENTS:-200000}
REPLAY_STORES=${BENCH_REPLAY_STORES:-postgres,pglite}
PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PRIMARY=127.0.0.1:${CRR_PRIMARY_PORT:-19092}
DR=127.0.0.1:${CRR_DR_PORT:-29092}

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
for v in RECORDS SIZE PARTITIONS TIMEOUT HTTP_PORT SETTLE REPLAY_EVENTS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_$v must be a non-negative integer (got '${!v}')"
done
[[ $RUN_MIRROR =~ ^[01]$ && $RUN_REPLAY =~ ^[01]$ && $RUN_BACKUP =~ ^[01]$ ]] || die "BENCH_MIRROR, BENCH_REPLAY and BENCH_BACKUP must be 0 or 1"
((RUN_MIRROR + RUN_REPLAY + RUN_BACKUP > 0)) || die "BENCH_MIRROR=0, BENCH_REPLAY=0 and BENCH_BACKUP=0: nothing to run"
((REPLAY_EVENTS >= 10)) || die "BENCH_REPLAY_EVENTS must be at least 10"
[[ $REPLAY_STORES =~ ^(postgres|pglite)(,(postgres|pglite))?$ ]] || die "BENCH_REPLAY_STORES must be postgres, pglite or both, comma-separated (got '$REPLAY_STORES')"
((RECORDS > 0 && SIZE > 0 && PARTITIONS > 0 && TIMEOUT > 0)) || die "BENCH_RECORDS, BENCH_RECORD_SIZE, BENCH_PARTITIONS and BENCH_TIMEOUT must be > 0"
for c in node java timeout; do command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed"; done
[[ -f $ROOT/dist/cli/main.js ]] || die "dist/ is missing: run 'npm run build' (npm run bench does it in prebench)"
if [[ -n $(find "$ROOT/src" -newer "$ROOT/dist/cli/main.js" -name '*.ts' -print -quit) ]]; then
  # not rebuilt here: dist/ may be in use by tests running at the same time
  printf 'bench: warning: src/ has changes newer than dist/; measuring dist/ as built (run npm run build first)\n' >&2
fi

TS=$(date +%Y%m%d%H%M%S)
TOPIC=bench-$TS
CRR_ALIAS=crrb$TS                         # crr's name for the primary in this run
CRR_REMOTE=$CRR_ALIAS.$TOPIC
CRR_POSITIONS=crr-offsets.$CRR_ALIAS.internal
CRR_GROUP=crr-mirror-$CRR_ALIAS-dr        # crr's source consumer group (= its transactional id)
PERF_GROUP=$TOPIC-perf-consumer
MM2_REMOTE=primary.$TOPIC
MM2EOS_ALIAS=primaryeos
MM2EOS_REMOTE=$MM2EOS_ALIAS.$TOPIC
MM2_GROUP=$TOPIC-mm2                      # Connect worker group on dr
MM2EOS_GROUP=$TOPIC-mm2eos
EOS_WATCH_GROUP=$TOPIC-eos-watch          # the helper's reader of MM2's offsets topic
RUN="$ROOT/.bench/run-$TS"
RESULT="$ROOT/.bench/mirror-$TS.json"
mkdir -p "$RUN"
: >"$RUN/notes.txt"
note() { printf '%s\n' "$*" >>"$RUN/notes.txt"; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now_ms() { local us=${EPOCHREALTIME/[.,]/}; echo $((us / 1000)); }
tool() { bash "$KAFKA_SH" tool "$@"; }
helper() { node "$HELPER" "$@"; }

# Topics this run created for sure (deleted at the end), per cluster, and names shared with
# other MM2 runs (deleted only if they are new).
PRIMARY_TOPICS=()
DR_TOPICS=()
PRIMARY_SHARED=(mm2-offset-syncs.dr.internal heartbeats)
DR_SHARED=(heartbeats primary.heartbeats primary.checkpoints.internal "$MM2EOS_ALIAS.heartbeats" "$MM2EOS_ALIAS.checkpoints.internal" mm2-offset-syncs.dr.internal)
PRIMARY_GROUPS=("$PERF_GROUP" "$CRR_GROUP")
DR_GROUPS=("$MM2_GROUP" "$MM2EOS_GROUP" "$EOS_WATCH_GROUP")

# ------------------------------------------------------------------ processes --

PIDS=()       # every long-running process started here
stop_pid() {  # pid grace_seconds name: SIGTERM, SIGKILL after the grace; prints how it went
  local pid=$1 grace=$2 name=$3 t0 rc=0
  kill -0 "$pid" 2>/dev/null || return 0
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    printf '  %s (pid %s) still running %ss after SIGTERM: SIGKILL\n' "$name" "$pid" "$grace"
    note "$name did not stop within ${grace}s of SIGTERM; killed"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  printf '  %s (pid %s) stopped in %s ms, exit status %s\n' "$name" "$pid" $(($(now_ms) - t0)) "$rc"
  STOP_RC=$rc
}

# topic names -> one anchored regex for kafka-topics --topic (which matches the whole name)
topics_regex() { local IFS='|'; local t=("${@//./\\.}"); echo "${t[*]}"; }

delete_topics() { # bootstrap label names...
  local bs=$1 label=$2
  shift 2
  (($#)) || return 0
  printf '  deleting on %s: %s\n' "$label" "$*"
  timeout 120 bash "$KAFKA_SH" tool kafka-topics --bootstrap-server "$bs" --delete --if-exists --topic "$(topics_regex "$@")" >/dev/null 2>"$RUN/delete-$label.err" ||
    printf '  warning: deleting topics on %s failed (see %s)\n' "$label" "$RUN/delete-$label.err"
}

delete_groups() { # bootstrap label groups...
  local bs=$1 label=$2 args=() g
  shift 2
  for g in "$@"; do args+=(--group "$g"); done
  timeout 120 bash "$KAFKA_SH" tool kafka-consumer-groups --bootstrap-server "$bs" --delete "${args[@]}" >"$RUN/groups-$label.out" 2>&1 || true
}

CLEANED=0
cleanup() {
  local rc=$?
  ((CLEANED)) && return
  CLEANED=1
  trap - INT TERM
  set +e
  local pid
  if ((${#PIDS[@]})); then
    for pid in "${PIDS[@]}"; do
      # the replay helper stops its crr process and cleans up on SIGTERM: give it time
      if [[ $pid == "${REPLAY_PID:-}" ]]; then
        kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 60 "replay helper"
      else
        kill -0 "$pid" 2>/dev/null && stop_pid "$pid" 20 "process" >/dev/null
      fi
    done
  fi
  if [[ ${SNAPSHOT_DONE:-0} == 1 ]]; then
    step "cleaning up"
    # shared names: only those that did not exist before this run
    local now_p now_d t
    now_p=$(helper topics --broker "$PRIMARY" 2>/dev/null)
    now_d=$(helper topics --broker "$DR" 2>/dev/null)
    for t in "${PRIMARY_SHARED[@]}"; do
      grep -qxF "$t" "$RUN/topics-before-primary.txt" || ! grep -qxF "$t" <<<"$now_p" || PRIMARY_TOPICS+=("$t")
    done
    for t in "${DR_SHARED[@]}"; do
      grep -qxF "$t" "$RUN/topics-before-dr.txt" || ! grep -qxF "$t" <<<"$now_d" || DR_TOPICS+=("$t")
    done
    if [[ $KEEP == 1 ]]; then
      printf '  BENCH_KEEP=1: keeping topics\n    primary: %s\n    dr: %s\n' "${PRIMARY_TOPICS[*]-}" "${DR_TOPICS[*]-}"
    else
      delete_topics "$PRIMARY" primary "${PRIMARY_TOPICS[@]}"
      delete_topics "$DR" dr "${DR_TOPICS[@]}"
      delete_groups "$PRIMARY" primary "${PRIMARY_GROUPS[@]}"
      delete_groups "$DR" dr "${DR_GROUPS[@]}"
    fi
  fi
  if ((rc != 0)); then
    printf '\nbench: FAILED (exit %s); logs and configs in %s\n' "$rc" "${RUN#"$ROOT"/}" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A helper killed by a signal (Ctrl-C reaches the whole process group): stop here quietly.
interrupted() { if (($1 > 128)); then printf '\nbench: interrupted\n' >&2; exit "$1"; fi; }

# Runs a command with a timeout; its stdout is shown and kept in a file.
run_timed() { # seconds outfile errfile cmd...
  local secs=$1 out=$2 err=$3 rc=0
  shift 3
  timeout --foreground --kill-after=10 "$secs" "$@" 2>"$err" | tee "$out" || rc=$?
  if ((rc == 124 || rc == 137)); then die "'$*' timed out after ${secs}s (stderr: $err)"; fi
  interrupted "$rc"
  if ((rc != 0)); then
    tail -n 20 "$err" >&2 || true
    die "'$*' failed with status $rc (stderr: $err)"
  fi
}

# -------------------------------------------------------------- MM2 helpers --

# $1 file, $2 source alias, $3 Connect group, $4 internal topic stem, $5 "eos" or ""
write_mm2_properties() {
  local file=$1 alias=$2 group=$3 stem=$4 eos=$5
  cat >"$file" <<PROPS
# generated by scripts/bench.sh: MirrorMaker 2 in dedicated mode, one flow $alias->dr
clusters = $alias, dr
$alias.bootstrap.servers = $PRIMARY
dr.bootstrap.servers = $DR
$alias->dr.enabled = true
$alias->dr.topics = $TOPIC
dr->$alias.enabled = false
# without this the disabled reverse flow still gets a herder that emits heartbeats into the
# primary; that is not part of the measured flow
dr->$alias.emit.heartbeats.enabled = false
# one task, as crr runs one task per flow
tasks.max = 1
# single-broker clusters: replication factor 1 for the remote topic and every internal topic
replication.factor = 1
offset-syncs.topic.replication.factor = 1
checkpoints.topic.replication.factor = 1
heartbeats.topic.replication.factor = 1
offset.storage.replication.factor = 1
status.storage.replication.factor = 1
config.storage.replication.factor = 1
sync.topic.acls.enabled = false
# this run's own Connect group and internal topics on dr (default: <alias>-mm2, mm2-*.<alias>.internal)
dr.group.id = $group
config.storage.topic = mm2-configs.$stem.internal
offset.storage.topic = mm2-offsets.$stem.internal
status.storage.topic = mm2-status.$stem.internal
PROPS
  if [[ $eos == eos ]]; then
    cat >>"$file" <<PROPS
# exactly once (KIP-618 source connectors, KIP-710 dedicated mode): transactional writes to dr,
# source offsets committed in the same transactions; the source must be read read_committed
# (MirrorSourceConnector reports exactly-once support only then)
dr.exactly.once.source.support = enabled
$alias.consumer.isolation.level = read_committed
PROPS
  fi
}

# $1 label, $2 properties, $3 log; starts MM2 and sets MM2_PID and MM2_T0
start_mm2() {
  local label=$1 props=$2 log=$3
  MM2_T0=$(now_ms)
  KAFKA_TOOL_HEAP_OPTS="$MM2_HEAP" KAFKA_TOOL_LOG_LEVEL=INFO \
    bash "$KAFKA_SH" tool connect-mirror-maker "$props" >"$log" 2>&1 &
  MM2_PID=$!   # kafka.sh execs java, so this is the JVM's pid
  PIDS+=("$MM2_PID")
  echo "$label pid $MM2_PID"
}

# ERROR lines MM2 logged while it ran (up to line $3 of its log) and while it stopped (after)
mm2_problems() { # label log lines-before-stop
  local n m
  n=$(head -n "$3" "$2" | grep -cE '^\[[^]]*\] (ERROR|FATAL) ' || true)
  m=$(tail -n "+$(($3 + 1))" "$2" | grep -cE '^\[[^]]*\] (ERROR|FATAL) ' || true)
  if ((n > 0)); then
    printf '  %s logged %s ERROR lines while mirroring, e.g.:\n' "$1" "$n"
    head -n "$3" "$2" | grep -E '^\[[^]]*\] (ERROR|FATAL) ' | head -n 3 | cut -c1-300 | sed 's/^/    /'
    note "$1 logged $n ERROR lines while mirroring, see ${2#"$ROOT"/}"
  fi
  if ((m > 0)); then
    printf '  %s logged %s ERROR lines while stopping (after SIGTERM), e.g.:\n' "$1" "$m"
    tail -n "+$(($3 + 1))" "$2" | grep -E '^\[[^]]*\] (ERROR|FATAL) ' | head -n 2 | cut -c1-300 | sed 's/^/    /'
  fi
}

# ----------------------------------------------------------------- clusters --

GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- src 2>/dev/null) ]]; then GIT_REV="$GIT_REV+dirty-src"; fi

if [[ $RUN_MIRROR == 1 ]]; then step "1. clusters and a fresh source topic $TOPIC ($PARTITIONS partitions)"; else step "1. clusters"; fi
bash "$KAFKA_SH" up

if [[ $RUN_MIRROR == 1 ]]; then
  helper topics --broker "$PRIMARY" >"$RUN/topics-before-primary.txt"
  helper topics --broker "$DR" >"$RUN/topics-before-dr.txt"
  SNAPSHOT_DONE=1
  if grep -qxF "$TOPIC" "$RUN/topics-before-primary.txt"; then die "topic $TOPIC already exists on primary"; fi
  for t in "$CRR_REMOTE" "$MM2_REMOTE" "$MM2EOS_REMOTE"; do
    if grep -qxF "$t" "$RUN/topics-before-dr.txt"; then die "topic $t already exists on dr"; fi
  done
  PRIMARY_TOPICS+=("$TOPIC")
  timeout 120 bash "$KAFKA_SH" tool kafka-topics --bootstrap-server "$PRIMARY" --create --topic "$TOPIC" \
    --partitions "$PARTITIONS" --replication-factor 1 >/dev/null 2>"$RUN/create.err" ||
    { cat "$RUN/create.err" >&2; die "cannot create $TOPIC"; }
  echo "created $TOPIC on primary ($PRIMARY)"

  cat >"$RUN/meta.json" <<JSON
{
  "timestamp": "$TS",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "topic": "$TOPIC",
  "records": $RECORDS,
  "recordSize": $SIZE,
  "partitions": $PARTITIONS,
  "primary": "$PRIMARY",
  "dr": "$DR",
  "git": "$GIT_REV",
  "distBuiltAt": "$(date -u -r "$ROOT/dist/cli/main.js" +%Y-%m-%dT%H:%M:%SZ)",
  "host": { "cpus": $(nproc), "memTotalMiB": $(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024)), "node": "$(node -v)", "java": "$(java -version 2>&1 | head -1 | sed 's/"/\\"/g')" },
  "runDir": ".bench/run-$TS"
}
JSON

  # --------------------------------------------------------------- producer --

  step "2. producing $RECORDS records of $SIZE bytes (kafka-producer-perf-test, acks=all)"
  run_timed "$TIMEOUT" "$RUN/producer.out" "$RUN/producer.err" \
    bash "$KAFKA_SH" tool kafka-producer-perf-test --bootstrap-server "$PRIMARY" --topic "$TOPIC" \
    --num-records "$RECORDS" --record-size "$SIZE" --throughput -1 --reporting-interval 3000 \
    --command-property acks=all linger.ms=10 batch.size=262144 compression.type=none
  note "producer: acks=all linger.ms=10 batch.size=262144, no compression, no keys (sticky partitioner)"

  sleep "$SETTLE"

  # ---------------------------------------------------------------- ceiling --

  step "3. ceiling: kafka-consumer-perf-test reads all $RECORDS records"
  timeout --kill-after=10 "$TIMEOUT" bash "$KAFKA_SH" tool kafka-consumer-perf-test --bootstrap-server "$PRIMARY" \
    --topic "$TOPIC" --num-records "$RECORDS" --group "$PERF_GROUP" --timeout 30000 \
    >"$RUN/consumer.out" 2>"$RUN/consumer.err" &
  CONSUMER_PID=$!
  PIDS+=("$CONSUMER_PID")
  rc=0
  helper group-progress --broker "$PRIMARY" --group "$PERF_GROUP" --topic "$TOPIC" --records "$RECORDS" --pid "$CONSUMER_PID" --label ceiling || rc=$?
  interrupted "$rc"
  rc=0
  wait "$CONSUMER_PID" || rc=$?
  if ((rc == 124 || rc == 137)); then die "kafka-consumer-perf-test timed out after ${TIMEOUT}s"; fi
  if ((rc != 0)); then
    tail -n 20 "$RUN/consumer.err" >&2 || true
    die "kafka-consumer-perf-test failed with status $rc"
  fi
  cat "$RUN/consumer.out"

  sleep "$SETTLE"

  # -------------------------------------------------------------------- crr --

  step "4. crr: mirror $TOPIC -> dr $CRR_REMOTE (log .bench/run-$TS/crr.log)"
  cat >"$RUN/crr.yaml" <<YAML
# generated by scripts/bench.sh
clusters:
  $CRR_ALIAS: { bootstrapServers: ["$PRIMARY"] }
  dr: { bootstrapServers: ["$DR"] }
mirror:
  flows:
    - source: $CRR_ALIAS
      target: dr
      topics: { include: ["$TOPIC"] }
      emitHeartbeats: false
  # /status positions are refreshed at this interval; 200 ms = the bench's polling interval
  lagPollIntervalMs: 200
http: { host: 127.0.0.1, port: $HTTP_PORT }
log: { level: $CRR_LOG_LEVEL }
YAML
  DR_TOPICS+=("$CRR_REMOTE" "$CRR_POSITIONS")
  note "crr: defaults (transactionLingerMs 50, transactionMaxBytes 8 MiB, maxBufferedBytes 32 MiB, fetchMaxBytesPerPartition 2 MiB, targetCompression none) except emitHeartbeats false and lagPollIntervalMs 200 (status refresh)"
  t0=$(now_ms)
  node ${CRR_NODE_ARGS[@]+"${CRR_NODE_ARGS[@]}"} "$ROOT/bin/crr.js" mirror --config "$RUN/crr.yaml" >"$RUN/crr.log" 2>&1 &
  CRR_PID=$!
  PIDS+=("$CRR_PID")
  echo "crr pid $CRR_PID${BENCH_CRR_NODE_ARGS:+ (node ${BENCH_CRR_NODE_ARGS})}"
  rc=0
  helper wait-crr --log "$RUN/crr.log" --topic "$TOPIC" --records "$RECORDS" --partitions "$PARTITIONS" \
    --t0 "$t0" --pid "$CRR_PID" --timeout "$TIMEOUT" --out "$RUN/crr.json" || rc=$?
  if ((rc != 0)); then
    interrupted "$rc"
    echo "last lines of crr's log:" >&2
    tail -n 20 "$RUN/crr.log" | cut -c1-400 >&2 || true
    die "crr did not catch up"
  fi
  STOP_RC=0
  stop_pid "$CRR_PID" 45 crr
  if ((STOP_RC != 0)); then note "crr exited with status $STOP_RC after SIGTERM"; fi
  # anything crr logged above info (pino JSON lines)
  grep -E '"level":"(warn|error|fatal)"' "$RUN/crr.log" >"$RUN/crr-problems.log" || true
  if [[ -s $RUN/crr-problems.log ]]; then
    n=$(wc -l <"$RUN/crr-problems.log")
    printf '  crr logged %s warning/error lines (%s), e.g.:\n' "$n" ".bench/run-$TS/crr-problems.log"
    head -n 3 "$RUN/crr-problems.log" | cut -c1-300 | sed 's/^/    /'
    note "crr logged $n warn/error lines, see .bench/run-$TS/crr-problems.log"
  fi

  # ------------------------------------------------------------------- MM2 --

  if [[ $RUN_MM2 == 1 ]]; then
    sleep "$SETTLE"
    step "5a. MirrorMaker 2 (defaults: at least once): $TOPIC -> dr $MM2_REMOTE (log .bench/run-$TS/mm2.log)"
    write_mm2_properties "$RUN/mm2.properties" primary "$MM2_GROUP" "$TOPIC" ""
    DR_TOPICS+=("$MM2_REMOTE" "mm2-configs.$TOPIC.internal" "mm2-offsets.$TOPIC.internal" "mm2-status.$TOPIC.internal")
    note "MM2: dedicated mode, tasks.max=1, heap $MM2_HEAP, otherwise defaults (source read read_uncommitted, Connect producer defaults); it also mirrors the source cluster's 'heartbeats' topic if there is one (MM2 always does)"
    start_mm2 MM2 "$RUN/mm2.properties" "$RUN/mm2.log"
    rc=0
    helper wait-offsets --broker "$DR" --topic "$MM2_REMOTE" --records "$RECORDS" --t0 "$MM2_T0" \
      --pid "$MM2_PID" --timeout "$TIMEOUT" --out "$RUN/mm2.json" --label MM2 || rc=$?
    if ((rc != 0)); then
      interrupted "$rc"
      grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$RUN/mm2.log" | tail -n 10 | cut -c1-400 >&2 || true
      die "MM2 did not finish (log: .bench/run-$TS/mm2.log)"
    fi
    lines=$(wc -l <"$RUN/mm2.log")
    stop_pid "$MM2_PID" 20 MM2
    mm2_problems MM2 "$RUN/mm2.log" "$lines"

    if [[ $RUN_MM2_EOS == 1 ]]; then
      sleep "$SETTLE"
      step "5b. MirrorMaker 2 exactly once: $TOPIC -> dr $MM2EOS_REMOTE (log .bench/run-$TS/mm2eos.log)"
      EOS_STEM=$TOPIC-eos
      write_mm2_properties "$RUN/mm2eos.properties" "$MM2EOS_ALIAS" "$MM2EOS_GROUP" "$EOS_STEM" eos
      DR_TOPICS+=("$MM2EOS_REMOTE" "mm2-configs.$EOS_STEM.internal" "mm2-offsets.$EOS_STEM.internal" "mm2-status.$EOS_STEM.internal")
      note "MM2 EOS: as MM2, plus dr.exactly.once.source.support=enabled and source isolation.level=read_committed; source alias '$MM2EOS_ALIAS' (same brokers as primary) so that its remote topic is $MM2EOS_REMOTE; done when the source offsets it committed (transactionally, with the records) cover all records"
      start_mm2 "MM2 EOS" "$RUN/mm2eos.properties" "$RUN/mm2eos.log"
      rc=0
      helper wait-connect-offsets --broker "$DR" --offsets-topic "mm2-offsets.$EOS_STEM.internal" \
        --source-topic "$TOPIC" --remote-topic "$MM2EOS_REMOTE" --partitions "$PARTITIONS" --records "$RECORDS" \
        --t0 "$MM2_T0" --pid "$MM2_PID" --timeout "$TIMEOUT" --group "$EOS_WATCH_GROUP" --out "$RUN/mm2eos.json" --label "MM2 EOS" || rc=$?
      if ((rc != 0)); then
        interrupted "$rc"
        grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$RUN/mm2eos.log" | tail -n 10 | cut -c1-400 >&2 || true
        die "MM2 with exactly-once did not finish (log: .bench/run-$TS/mm2eos.log)"
      fi
      # evidence that the task really wrote transactionally
      if grep -qE 'transactionalId=[^,]*MirrorSourceConnector' "$RUN/mm2eos.log"; then
        echo "  MM2 EOS: the MirrorSourceConnector task used a transactional producer ($(grep -oE 'transactionalId=[^],]*MirrorSourceConnector[^],]*' "$RUN/mm2eos.log" | head -1))"
      else
        note "MM2 EOS: no transactional MirrorSourceConnector producer seen in its log"
      fi
      lines=$(wc -l <"$RUN/mm2eos.log")
      stop_pid "$MM2_PID" 20 "MM2 EOS"
      mm2_problems "MM2 EOS" "$RUN/mm2eos.log" "$lines"
    fi
  fi

  # ----------------------------------------------------------------- report --

  step "6. results"
  helper report --dir "$RUN" --out "$RESULT"
  echo "JSON: ${RESULT#"$ROOT"/}"
fi

# ------------------------------------------------------------------- replay --

if [[ $RUN_REPLAY == 1 ]]; then
  if [[ $RUN_MIRROR == 1 ]]; then sleep "$SETTLE"; fi
  step "7. replay: $REPLAY_EVENTS change events into ${REPLAY_STORES//,/ and }, against plain batched inserts (logs .bench/run-$TS/replay/)"
  # in the background (and waited for) so that a signal reaches the cleanup trap at once; the
  # helper stops its crr process and cleans up after itself on SIGINT/SIGTERM
  node "$ROOT/scripts/bench/replay.mjs" --dir "$RUN/replay" --out "$ROOT/.bench/replay-$TS.json" --ts "$TS" \
    --broker "$PRIMARY" --events "$REPLAY_EVENTS" --stores "$REPLAY_STORES" --pg-url "$PG_URL" \
    --partitions "$PARTITIONS" --timeout "$TIMEOUT" --settle "$SETTLE" --keep "$KEEP" \
    --node-args "${BENCH_CRR_NODE_ARGS:-}" --git "$GIT_REV" &
  REPLAY_PID=$!
  PIDS+=("$REPLAY_PID")
  rc=0
  wait "$REPLAY_PID" || rc=$?
  interrupted "$rc"
  ((rc == 0)) || die "the replay benchmark failed (logs and configs in .bench/run-$TS/replay/)"
fi

# ------------------------------------------------------------------- backup --

if [[ $RUN_BACKUP == 1 ]]; then
  step "8. backup and restore of ${BENCH_BACKUP_ENTITIES:-1000000} entities through S3Proxy, against its raw upload and download"
  bash "$ROOT/scripts/s3.sh" up
  node "$ROOT/scripts/bench/backup.mjs" || die "the backup benchmark failed"
fi
