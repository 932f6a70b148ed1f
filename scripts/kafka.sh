#!/usr/bin/env bash
# scripts/kafka.sh - real Apache Kafka for local tests, demos and benchmarks.
#
# Fetches the Kafka broker, its CLI tools and MirrorMaker 2 as plain jars from
# Maven Central (via Maven, scripts/kafka/pom.xml) and runs two named
# single-node KRaft clusters (combined broker+controller) on loopback:
#
#   primary  127.0.0.1:19092  (controller 19093)   port: $CRR_PRIMARY_PORT
#   dr       127.0.0.1:29092  (controller 29093)   port: $CRR_DR_PORT
#
# Everything lives under the git-ignored .cache/ at the repo root:
#   .cache/m2/                      Maven repository (download cache)
#   .cache/kafka/$KAFKA_VERSION/    libs/ (all jars) + .fetched marker
#   .cache/clusters/NAME/           server.properties, cluster.id, data/, logs/, pid
#
# Usage: bash scripts/kafka.sh <command>   (any cwd; see `usage` below)
#   fetch | up [NAME..] | down [--purge] [NAME..] | restart NAME | kill NAME
#   status | tool TOOL [ARGS..] | env
#
# Version pin: KAFKA_VERSION=4.3.1, the newest 4.x release for which Maven
# Central has the complete artifact set we need. (Central's maven-metadata.xml
# for kafka_2.13 already lists 4.4.0, but kafka-tools, connect-mirror,
# connect-runtime and connect-json 4.4.0 are not published there, so 4.4.0
# cannot provide the CLI tools or MirrorMaker 2.)
#
# KafkaJS 2.2.4 against this 4.3.1 broker (checked, so no fallback to 3.9.x):
#   works: admin createTopics/listTopics/fetchTopicMetadata/fetchTopicOffsets
#     (+ByTimestamp)/describeConfigs/alterConfigs/createPartitions/
#     deleteTopicRecords/deleteTopics/describeCluster/listGroups/describeGroups/
#     fetchOffsets/setOffsets/resetOffsets/deleteGroups; idempotent and
#     transactional producers (commit, abort, sendOffsets); read_committed
#     consumers (readUncommitted:false) skip aborted records; zombie fencing;
#     GZIP. KafkaJS negotiates versions the 4.x broker still serves (seen:
#     Produce v7, Fetch v11, InitProducerId v1, EndTxn v1; KIP-896 removed
#     only older ones).
#   caveats (client-side KafkaJS behaviour, not 4.x-specific): KafkaJS fences at producer.transaction(), not at
#     connect(); the fenced producer gets INVALID_PRODUCER_EPOCH (not
#     PRODUCER_FENCED). Back-to-back transactions sometimes wait ~300 ms
#     (CONCURRENT_TRANSACTIONS retry). zstd/lz4/snappy batches need a codec
#     registered in KafkaJS (else KafkaJSNotImplemented), e.g. zstd via
#     @bokuweb/zstd-wasm.
#
# KRaft notes:
#   * the quorum is static (controller.quorum.voters=1@127.0.0.1:PORT+1), so
#     `kafka-storage format` runs WITHOUT --standalone: 4.x rejects
#     --standalone/--initial-controllers together with controller.quorum.voters,
#     and without controller.quorum.voters (dynamic quorum,
#     controller.quorum.bootstrap.servers) it requires --standalone. A static
#     quorum also keeps working if CRR_*_PORT changes between runs.
#   * 4.x logs through log4j2: -Dlog4j2.configurationFile=scripts/kafka/log4j2.yaml
#     (not the log4j 1.x -Dlog4j.configuration / log4j.properties).
#   * 4.3 tools: kafka-producer-perf-test --producer-props and
#     kafka-consumer-perf-test --messages still work but are deprecated (and
#     the former prints a notice on stdout); use --bootstrap-server +
#     --command-property k=v, and --num-records.
#
# Environment knobs:
#   CRR_PRIMARY_PORT, CRR_DR_PORT  broker ports (controller = port+1)
#   CRR_PRIMARY_ADVERTISED_PORT, CRR_DR_ADVERTISED_PORT
#                                  when set (at 'up'/'restart'), a second listener PROXIED on
#                                  127.0.0.1:port+2 is advertised as 127.0.0.1:THIS PORT, where
#                                  a TCP proxy forwarding to port+2 is expected (the fault soak,
#                                  scripts/soak.sh): clients bootstrapping at the proxy get the
#                                  proxy as the broker's address, so all their traffic crosses it.
#                                  The plain listener (port) keeps advertising itself; the broker's
#                                  own traffic (transaction markers) and the tools use it.
#   KAFKA_HEAP_OPTS                broker heap (default -Xms256m -Xmx768m)
#   KAFKA_TOOL_HEAP_OPTS           CLI tool heap (default -Xmx512m)
#   KAFKA_TOOL_LOG_LEVEL           CLI tool log level (default WARN, on stderr)
#   KAFKA_OPTS                     extra JVM options for broker and tools
#   CRR_KAFKA_UP_TIMEOUT           seconds to wait for readiness (default 60)
#   CRR_KAFKA_CDS=0                disable the class-data-sharing archives
#   CRR_KAFKA_SECURED=1            secured mode (below)
#
# Secured mode (CRR_KAFKA_SECURED=1, any command): the same two clusters, but
#   * clients reach them over SASL_SSL, SCRAM-SHA-512, on
#       primary 127.0.0.1:19492  port: $CRR_SECURED_PRIMARY_PORT
#       dr      127.0.0.1:29492  port: $CRR_SECURED_DR_PORT
#     (controller = port+1, SASL_SSL with PLAIN, principal User:kafka-controller),
#     so plain and secured clusters can run side by side;
#   * or over mTLS (listener MTLS, security protocol SSL, ssl.client.auth=required) on
#     port+2 (primary 127.0.0.1:19494, dr 127.0.0.1:29494; `env`: CRR_KAFKA_MTLS_PRIMARY,
#     CRR_KAFKA_MTLS_DR): the principal is the client certificate's CN
#     (ssl.principal.mapping.rules: CN=crr-mtls,... -> User:crr-mtls), which must be signed
#     by the test CA; ACLs apply as on the SASL listener. A broker started by an older
#     kafka.sh without this listener is restarted by `up` (server.properties is rewritten
#     at every `up`; the data is kept);
#   * a test CA and a broker certificate (SAN IP:127.0.0.1, DNS:localhost), a
#     client certificate (CN=crr), a second, unrelated CA, and the mTLS client
#     certificates crr-mtls.crt (CN=crr-mtls, by the test CA) and
#     crr-mtls-other-ca.crt (CN=crr-mtls, by the other CA) with their keys are made
#     once by openssl in .cache/tls/ (ca.crt is the trust anchor clients need);
#   * SCRAM users are created at format time (kafka-storage format --add-scram):
#     crr-admin (super user), kafka-broker (inter-broker, super user) and the
#     names in $CRR_KAFKA_SCRAM_USERS (default "crr app crr-src crr-dr"); a name
#     added to the list later is added by `up` to the running clusters
#     (kafka-configs --alter --add-config SCRAM-SHA-512=[...] as crr-admin,
#     recorded in .cache/clusters-secured/NAME/scram-users, so no reformat is
#     needed); their random
#     passwords are kept in .cache/clusters-secured/users.env (0600), created
#     once; `env` prints them and a client properties file for CLI tools
#     (tool kafka-topics --command-config "$CRR_KAFKA_ADMIN_PROPERTIES" ...);
#   * authorizer.class.name=StandardAuthorizer, allow.everyone.if.no.acl.found=false,
#     super.users=User:crr-admin;User:kafka-broker;User:kafka-controller;
#   * cluster state lives in .cache/clusters-secured/NAME (not .cache/clusters).
# Readiness there is "port open and the broker logged 'Kafka Server started'"
# (the raw metadata probe below speaks PLAINTEXT only).
set -euo pipefail

KAFKA_VERSION=4.3.1

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
mkdir -p "$ROOT/.cache"
# the physical path: a second checkout whose .cache is a symlink to this one must recognise the same processes
CACHE=$(cd -- "$ROOT/.cache" && pwd -P)
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/kafka/log4j2.yaml"
M2_REPO="$CACHE/m2"
KAFKA_HOME="$CACHE/kafka/$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_CLASSPATH="$KAFKA_LIBS/*"
MARKER="$KAFKA_HOME/.fetched"
SCRIPT_NAME=kafka.sh
TOOL_NAME=Kafka
TOOL_VERSION=$KAFKA_VERSION
TOOL_LIBS="$KAFKA_LIBS"
VERSION_PROP=kafka.version
# shellcheck source=scripts/lib/jvm-tool.sh
source "$SCRIPT_DIR/lib/jvm-tool.sh"
CLUSTERS_DIR="$CACHE/clusters"
[[ ${CRR_KAFKA_SECURED:-0} == 1 ]] && CLUSTERS_DIR="$CACHE/clusters-secured"
ALL_CLUSTERS=(primary dr)
UP_TIMEOUT=${CRR_KAFKA_UP_TIMEOUT:-60}
STOP_TIMEOUT=30


# ---------------------------------------------------------------- clusters --

cluster_port() {
  if secured; then secured_port "$1"; return; fi
  case "$1" in
    primary) echo "${CRR_PRIMARY_PORT:-19092}" ;;
    dr) echo "${CRR_DR_PORT:-29092}" ;;
    *) die "unknown cluster '$1' (known: ${ALL_CLUSTERS[*]})" ;;
  esac
}
cluster_dir() { echo "$CLUSTERS_DIR/$1"; }
# The advertised port of the PROXIED listener (CRR_<NAME>_ADVERTISED_PORT), or nothing.
cluster_advertised_port() {
  case "$1" in
    primary) echo "${CRR_PRIMARY_ADVERTISED_PORT:-}" ;;
    dr) echo "${CRR_DR_ADVERTISED_PORT:-}" ;;
  esac
}

check_cluster_names() {
  local n
  for n in "$@"; do cluster_port "$n" >/dev/null; done
}

# Serialise up/down/restart/kill (e.g. parallel test workers all calling 'up').
# fd 8 holds the lock; processes started from here must close it (8>&-).
LOCKED=0
lock_clusters() {
  ((LOCKED)) && return 0
  mkdir -p "$CLUSTERS_DIR"
  exec 8>"$CLUSTERS_DIR/.lock"
  LOCKED=1
  command -v flock >/dev/null 2>&1 || return 0
  if ! flock -n 8; then
    log "waiting for another 'kafka.sh up/down' to finish..."
    flock -w 300 8 || die "timed out waiting for $CLUSTERS_DIR/.lock"
  fi
}

# ------------------------------------------------------------------- tools --

# Kafka CLI script name -> main class (Kafka 4.3). Most tools moved from the
# Scala kafka.* packages to org.apache.kafka.tools.* in 4.0; kafka-configs and
# kafka-storage are still Scala classes in kafka_2.13.
tool_class() {
  case "$1" in
    kafka-server-start) echo kafka.Kafka ;;
    kafka-storage) echo kafka.tools.StorageTool ;;
    kafka-configs) echo kafka.admin.ConfigCommand ;;
    kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
    kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
    kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
    kafka-share-consumer-perf-test) echo org.apache.kafka.tools.ShareConsumerPerformance ;;
    kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-console-share-consumer) echo org.apache.kafka.tools.consumer.ConsoleShareConsumer ;;
    kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
    kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-share-groups) echo org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
    kafka-streams-groups) echo org.apache.kafka.tools.streams.StreamsGroupCommand ;;
    kafka-groups) echo org.apache.kafka.tools.GroupsCommand ;;
    kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
    kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
    kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
    kafka-dump-log) echo org.apache.kafka.tools.DumpLogSegments ;;
    kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
    kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
    kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
    kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
    kafka-features) echo org.apache.kafka.tools.FeatureCommand ;;
    kafka-cluster) echo org.apache.kafka.tools.ClusterTool ;;
    kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
    kafka-delegation-tokens) echo org.apache.kafka.tools.DelegationTokenCommand ;;
    kafka-client-metrics) echo org.apache.kafka.tools.ClientMetricsCommand ;;
    kafka-e2e-latency) echo org.apache.kafka.tools.EndToEndLatency ;;
    kafka-verifiable-producer) echo org.apache.kafka.tools.VerifiableProducer ;;
    kafka-verifiable-consumer) echo org.apache.kafka.tools.VerifiableConsumer ;;
    kafka-jmx) echo org.apache.kafka.tools.JmxTool ;;
    kafka-streams-application-reset) echo org.apache.kafka.tools.StreamsResetter ;;
    connect-mirror-maker) echo org.apache.kafka.connect.mirror.MirrorMaker ;;
    connect-standalone) echo org.apache.kafka.connect.cli.ConnectStandalone ;;
    connect-distributed) echo org.apache.kafka.connect.cli.ConnectDistributed ;;
    *) return 1 ;;
  esac
}
KNOWN_TOOLS="kafka-topics kafka-configs kafka-producer-perf-test kafka-consumer-perf-test
  kafka-console-consumer kafka-console-producer kafka-consumer-groups kafka-get-offsets
  kafka-storage kafka-broker-api-versions kafka-transactions connect-mirror-maker
  kafka-delete-records kafka-dump-log kafka-acls kafka-leader-election kafka-log-dirs
  kafka-metadata-quorum kafka-features kafka-cluster kafka-reassign-partitions
  kafka-groups kafka-share-groups kafka-streams-groups kafka-console-share-consumer
  kafka-share-consumer-perf-test kafka-delegation-tokens kafka-client-metrics
  kafka-e2e-latency kafka-verifiable-producer kafka-verifiable-consumer kafka-jmx
  kafka-streams-application-reset connect-standalone connect-distributed
  kafka-server-start kafka-run-class (takes a main class name)"

# ----------------------------------------------------------------- helpers --




# Class-data sharing (AppCDS): JVM start-up is mostly class loading, and on a
# 2-core box a dynamic CDS archive makes a broker start ~40% faster and a CLI
# tool ~2x faster. Archives live in $KAFKA_HOME/cds, keyed by the JVM build,
# and are created as a side effect: the broker archive when a broker started
# without one is stopped with 'down' (dumped at JVM exit), the tools archive
# by one training run at the end of the first 'up'. CRR_KAFKA_CDS=0 disables.
# Prints the archive path for $1 (broker|tools), or nothing if unusable.
cds_archive() {
  [[ ${CRR_KAFKA_CDS:-1} == 1 ]] || return 0
  local jbin jhome
  jbin=$(readlink -f "$(command -v java)" 2>/dev/null) || return 0
  jhome=$(dirname "$(dirname "$jbin")")
  # dynamic archives sit on top of the JDK's default CDS archive
  [[ -f $jhome/lib/server/libjvm.so && -f $jhome/lib/server/classes.jsa ]] || return 0
  echo "$KAFKA_HOME/cds/$1-$(stat -c '%s-%Y' "$jhome/lib/server/libjvm.so").jsa"
}

# Move a finished dump ($1.tmp.$2) into place, or drop it.
cds_commit() {
  local arch=$1 tag=$2
  [[ -f $arch.tmp.$tag ]] || return 0
  if [[ -s $arch.tmp.$tag && ! -f $arch ]]; then
    mv -f "$arch.tmp.$tag" "$arch"
  else
    rm -f "$arch.tmp.$tag"
  fi
}

# exec java ... MAINCLASS [args...] for a CLI tool: log4j2 at WARN on stderr,
# and JVM (unified logging) warnings on stderr too, so stdout stays parseable.
TOOL_JVM_FLAGS="-XX:+UseG1GC"
run_java_tool() {
  local heap=${KAFKA_TOOL_HEAP_OPTS:--Xmx512m} arch cds=()
  arch=$(cds_archive tools)
  [[ -n $arch && -f $arch ]] && cds=(-XX:SharedArchiveFile="$arch")
  # shellcheck disable=SC2086  # heap / flags / KAFKA_OPTS are intentionally word-split
  exec java $heap $TOOL_JVM_FLAGS "${cds[@]}" -Djava.awt.headless=true \
    -Xlog:disable -Xlog:all=warning:stderr \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dcrr.log.level="${KAFKA_TOOL_LOG_LEVEL:-WARN}" -Dcrr.log.target=SYSTEM_ERR \
    ${KAFKA_OPTS:-} -cp "$KAFKA_CLASSPATH" "$@"
}

# Same, but returns (for use inside this script); short-lived, so C1 only.
tool_quiet() {
  (
    TOOL_JVM_FLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    KAFKA_TOOL_HEAP_OPTS="-Xmx256m"
    run_java_tool "$@"
  )
}


pid_of() {
  local f
  f="$(cluster_dir "$1")/pid"
  [[ -f $f ]] && cat "$f" 2>/dev/null || true
}

# True if $2 is a live process that is the broker of cluster $1.
is_our_broker() {
  local name=$1 pid=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cluster_dir "$name")/server.properties"
}

broker_pid() {
  local pid
  pid=$(pid_of "$1")
  if is_our_broker "$1" "$pid"; then echo "$pid"; fi
}

# Does the broker on 127.0.0.1:$1 answer a metadata request? Sends a raw
# Metadata v4 request (all topics) over bash's /dev/tcp and checks that the
# response carries our correlation id and lists a broker at 127.0.0.1:$1.
# Takes milliseconds, unlike a JVM-based tool (~1.5 s each).
answers() {
  if secured; then secured_answers "$1"; return; fi
  local port=$1 out
  local -a b
  out=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    # size 18 | api_key 3 (Metadata) | api_version 4 | correlation_id 42 |
    # client_id "crr" | topics null (=all) | allow_auto_topic_creation false
    printf "\x00\x00\x00\x12\x00\x03\x00\x04\x00\x00\x00\x2a\x00\x03crr\xff\xff\xff\xff\x00" >&3
    # size(4) correlation_id(4) throttle(4) #brokers(4) node_id(4) host(2+9) port(4)
    head -c 35 <&3 | od -An -v -tu1' _ "$port" 2>/dev/null) || return 1
  read -r -d '' -a b <<<"$out" || true
  ((${#b[@]} == 35)) || return 1
  ((b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 42)) || return 1              # correlation id
  ((b[12] + b[13] + b[14] + b[15] > 0)) || return 1                              # >= 1 broker
  ((b[20] == 0 && b[21] == 9)) || return 1                                       # host "127.0.0.1"
  ((b[31] == 0 && b[32] == 0 && b[33] * 256 + b[34] == port)) || return 1        # advertised port
}

# ------------------------------------------------------------------- fetch --



# ---------------------------------------------------------------------- up --

write_server_properties() {
  local name=$1 port=$2 dir
  dir=$(cluster_dir "$name")
  local cport=$((port + 1)) adv listeners advertised protocols
  adv=$(cluster_advertised_port "$name")
  listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
  advertised="PLAINTEXT://127.0.0.1:$port"
  protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ -n $adv ]]; then
    [[ $adv =~ ^[0-9]+$ ]] || die "cluster $name: advertised port '$adv' is not a number"
    listeners+=",PROXIED://127.0.0.1:$((port + 2))"
    advertised+=",PROXIED://127.0.0.1:$adv"
    protocols+=",PROXIED:PLAINTEXT"
  fi
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh for cluster '$name' - rewritten on every 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/data

# single node: every internal topic with replication factor 1
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=3

# fast tests
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.check.interval.ms=5000
transaction.abort.timed.out.transaction.cleanup.interval.ms=10000
log.cleaner.backoff.ms=2000
# After a crash ('kill') the restarted node cannot re-register until the old
# broker session expires (DUPLICATE_BROKER_REGISTRATION), default 9 s.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=4
EOF
  if secured; then secured_server_properties "$port" "$cport" >>"$dir/server.properties"; fi
}

# A Kafka cluster id: a random UUID in URL-safe base64 without padding (what
# `kafka-storage random-uuid` prints), without paying for a JVM start.
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ ${#id} == 22 && $id != -* ]] && break # Kafka never generates a leading '-'
  done
  echo "$id"
}

# Prepare a cluster folder and format its storage if needed (no output on success).
prepare_cluster() {
  local name=$1 port=$2 dir
  dir=$(cluster_dir "$name")
  mkdir -p "$dir/data" "$dir/logs"
  write_server_properties "$name" "$port"
  if [[ ! -s $dir/cluster.id ]]; then
    if [[ -f $dir/data/meta.properties ]]; then # keep the id the data was formatted with
      sed -n 's/^cluster\.id=//p' "$dir/data/meta.properties" >"$dir/cluster.id"
    else
      new_cluster_id >"$dir/cluster.id"
    fi
  fi
  if [[ ! -f $dir/data/meta.properties ]]; then
    local scram=()
    secured && mapfile -t scram < <(secured_format_args)
    if ! tool_quiet kafka.tools.StorageTool format --ignore-formatted "${scram[@]}" \
      -t "$(cat "$dir/cluster.id")" -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1; then
      cat "$dir/logs/format.log" >&2
      return 1
    fi
    if secured; then printf '%s\n' crr-admin kafka-broker $SCRAM_USERS >"$(secured_users_marker "$name")"; fi
  fi
}

start_broker() {
  local name=$1 dir
  dir=$(cluster_dir "$name")
  # keep the previous run's log
  [[ -f $dir/logs/server.log ]] && mv -f "$dir/logs/server.log" "$dir/logs/server.log.1"
  local heap=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m} arch cds=()
  arch=$(cds_archive broker)
  if [[ -n $arch ]]; then
    rm -f "$arch.tmp.$name"
    if [[ -f $arch ]]; then
      cds=(-XX:SharedArchiveFile="$arch")
    else
      mkdir -p "$(dirname "$arch")"
      cds=(-XX:ArchiveClassesAtExit="$arch.tmp.$name")
    fi
  fi
  # setsid+nohup: the broker survives this script and its process group.
  # The inner shell writes its own pid and then execs java, so pid == java.
  nohup setsid bash -c 'echo $$ >"$1/pid"; shift; exec "$@"' _ "$dir" \
    java $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "${cds[@]}" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dcrr.log.level=INFO \
    -Dcrr.log.target=SYSTEM_OUT -Dkafka.logs.dir="$dir/logs" \
    ${KAFKA_OPTS:-} -cp "$KAFKA_CLASSPATH" kafka.Kafka "$dir/server.properties" \
    >"$dir/logs/server.log" 2>&1 </dev/null 8>&- 9>&- &
  # wait (briefly) for the pid file
  local i
  for i in $(seq 1 50); do
    [[ -s $dir/pid ]] && return 0
    sleep 0.1
  done
  die "cluster $name: broker did not start (see $dir/logs/server.log)"
}

cmd_up() {
  local names=("$@")
  ((${#names[@]})) || names=("${ALL_CLUSTERS[@]}")
  check_cluster_names "${names[@]}"
  ensure_fetched
  lock_clusters
  secured && secured_init
  local t0 name port pid
  t0=$(now)
  local to_start=() waiting=()
  for name in "${names[@]}"; do
    port=$(cluster_port "$name")
    pid=$(broker_pid "$name")
    if [[ -n $pid ]] && secured && ! secured_has_mtls_listener "$name"; then
      log "cluster $name: running without the mTLS listener (started by an older kafka.sh); restarting it"
      stop_cluster "$name" TERM
      pid=""
    fi
    if [[ -n $pid ]]; then
      if answers "$port"; then
        log "cluster $name already running on 127.0.0.1:$port (pid $pid)"
      else
        log "cluster $name: broker pid $pid is running but not answering yet; waiting"
        waiting+=("$name")
      fi
      continue
    fi
    rm -f "$(cluster_dir "$name")/pid"
    local p extra=()
    # port+2: the PROXIED listener (plain mode, when advertised elsewhere) or the MTLS listener (secured)
    if [[ -n $(cluster_advertised_port "$name") ]] || secured; then extra=($((port + 2))); fi
    for p in "$port" $((port + 1)) "${extra[@]+"${extra[@]}"}"; do
      if port_open "$p"; then
        local who=""
        command -v ss >/dev/null 2>&1 && who=$(ss -Htlnp "sport = :$p" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)
        die "cluster $name: port 127.0.0.1:$p is already in use by another process${who:+ ($who)}; stop it or set CRR_$(echo "$name" | tr '[:lower:]' '[:upper:]')_PORT"
      fi
    done
    to_start+=("$name")
  done

  if ((${#to_start[@]})); then
    # format (in parallel: each is a ~1-2 s JVM)
    local pids=() rc=0 i
    for name in "${to_start[@]}"; do
      if [[ ! -f $(cluster_dir "$name")/data/meta.properties ]]; then
        log "cluster $name: formatting storage in $(cluster_dir "$name")/data"
      fi
      prepare_cluster "$name" "$(cluster_port "$name")" &
      pids+=($!)
    done
    for i in "${!pids[@]}"; do
      wait "${pids[$i]}" || { log "cluster ${to_start[$i]}: storage format failed"; rc=1; }
    done
    ((rc == 0)) || exit 1
    for name in "${to_start[@]}"; do
      start_broker "$name"
      log "cluster $name: starting broker (pid $(pid_of "$name"), log $(cluster_dir "$name")/logs/server.log)"
      waiting+=("$name")
    done
  fi

  if ((${#waiting[@]} == 0)); then
    secured && secured_ensure_all_users "${names[@]}"
    make_tools_archive "$(cluster_port "${names[0]}")"
    return 0
  fi
  # wait until every started broker answers a metadata request
  local deadline=$((SECONDS + UP_TIMEOUT)) pending=("${waiting[@]}") next dots=0 dir
  while ((${#pending[@]})); do
    next=()
    for name in "${pending[@]}"; do
      port=$(cluster_port "$name")
      dir=$(cluster_dir "$name")
      pid=$(broker_pid "$name")
      if [[ -z $pid ]]; then
        ((dots)) && printf '\n' >&2 && dots=0
        log "cluster $name: broker exited during start-up; last lines of $dir/logs/server.log:"
        tail -n 30 "$dir/logs/server.log" >&2 || true
        rm -f "$dir/pid"
        exit 1
      fi
      if answers "$port"; then
        ((dots)) && printf '\n' >&2 && dots=0
        log "cluster $name ready on 127.0.0.1:$port ($(since "$t0") s)"
      else
        next+=("$name")
      fi
    done
    pending=("${next[@]+"${next[@]}"}")
    ((${#pending[@]})) || break
    if ((SECONDS >= deadline)); then
      ((dots)) && printf '\n' >&2
      for name in "${pending[@]}"; do
        log "cluster $name: not ready after ${UP_TIMEOUT}s; last lines of $(cluster_dir "$name")/logs/server.log:"
        tail -n 30 "$(cluster_dir "$name")/logs/server.log" >&2 || true
      done
      die "timed out waiting for: ${pending[*]} (brokers left running; 'down' stops them)"
    fi
    printf '.' >&2
    dots=1
    sleep 0.5
  done
  secured && secured_ensure_all_users "${names[@]}"
  make_tools_archive "$(cluster_port "${waiting[0]}")"
}

# secured_ensure_users on each named cluster, in parallel (each missing user is a ~2 s JVM).
secured_ensure_all_users() {
  local pids=() name p rc=0
  for name in "$@"; do
    secured_ensure_users "$name" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || exit 1
}

# One-time training run that records the classes a CLI tool loads (admin
# client, networking, log4j2, arg parsing) into the tools CDS archive. Runs
# detached in the background (~3 s of CPU), so 'up' does not wait for it.
make_tools_archive() {
  secured && return 0 # the training run speaks PLAINTEXT
  local port=$1 arch
  arch=$(cds_archive tools)
  [[ -n $arch && ! -f $arch ]] || return 0
  mkdir -p "$(dirname "$arch")"
  find "$(dirname "$arch")" -name 'tools-*.tmp.*' -mmin +10 -delete 2>/dev/null || true
  nohup setsid bash -c '
    arch=$1 port=$2 tag=$$
    shift 2
    "$@" -XX:+UseG1GC -XX:ArchiveClassesAtExit="$arch.tmp.$tag" -Xlog:disable \
      org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --describe \
      >/dev/null 2>&1 || true
    if [[ -s $arch.tmp.$tag && ! -f $arch ]]; then mv -f "$arch.tmp.$tag" "$arch"; else rm -f "$arch.tmp.$tag"; fi
  ' _ "$arch" "$port" java -Xmx256m -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dcrr.log.level=OFF \
    -cp "$KAFKA_CLASSPATH" >/dev/null 2>&1 </dev/null 8>&- 9>&- &
}

# -------------------------------------------------------------------- down --

stop_cluster() {
  local name=$1 signal=$2 dir pid arch
  dir=$(cluster_dir "$name")
  pid=$(broker_pid "$name")
  if [[ -z $pid ]]; then
    rm -f "$dir/pid"
    log "cluster $name: not running"
    return 0
  fi
  if [[ $signal == KILL ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/pid"
    arch=$(cds_archive broker)
    [[ -z $arch ]] || rm -f "$arch.tmp.$name"
    log "cluster $name: killed (SIGKILL, pid $pid)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "cluster $name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$dir/pid"
  arch=$(cds_archive broker)
  [[ -z $arch ]] || cds_commit "$arch" "$name"
  log "cluster $name: stopped (pid $pid)"
}

cmd_down() {
  local purge=0 names=() a
  for a in "$@"; do
    case "$a" in
      --purge) purge=1 ;;
      -*) die "down: unknown option $a" ;;
      *) names+=("$a") ;;
    esac
  done
  ((${#names[@]})) || names=("${ALL_CLUSTERS[@]}")
  check_cluster_names "${names[@]}"
  lock_clusters
  local pids=() name
  # stop in parallel
  for name in "${names[@]}"; do
    stop_cluster "$name" TERM &
    pids+=($!)
  done
  local p rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || exit 1
  if ((purge)); then
    for name in "${names[@]}"; do
      if [[ -d $(cluster_dir "$name")/data ]]; then
        rm -rf "$(cluster_dir "$name")/data"
        log "cluster $name: data purged"
      fi
    done
  fi
}

cmd_kill() {
  (($# == 1)) || die "usage: kill NAME"
  check_cluster_names "$1"
  lock_clusters
  stop_cluster "$1" KILL
}

cmd_restart() {
  (($# == 1)) || die "usage: restart NAME"
  check_cluster_names "$1"
  ensure_fetched
  lock_clusters
  stop_cluster "$1" TERM
  cmd_up "$1"
}

cmd_status() {
  local name port pid state
  printf '%-8s %-8s %-16s %s\n' CLUSTER STATE ADDRESS PID
  for name in "${ALL_CLUSTERS[@]}"; do
    port=$(cluster_port "$name")
    pid=$(broker_pid "$name")
    if [[ -n $pid ]]; then
      if port_open "$port"; then state=running; else state=starting; fi
    else
      state=stopped
      [[ -f $(cluster_dir "$name")/pid ]] && state="stopped (stale pid file)"
      pid=-
    fi
    printf '%-8s %-8s %-16s %s\n' "$name" "$state" "127.0.0.1:$port" "$pid"
  done
}

# ----------------------------------------------------------- secured mode --
# Everything CRR_KAFKA_SECURED=1 changes lives in these functions; the plain
# mode above calls them only behind `secured &&`.

secured() { [[ ${CRR_KAFKA_SECURED:-0} == 1 ]]; }
TLS_DIR="$CACHE/tls"
# The SCRAM users besides crr-admin and kafka-broker: crr (crr's own principal), app (an
# application), crr-src (the mirror's read-only source principal), crr-dr (a DR daemon's).
SCRAM_USERS=${CRR_KAFKA_SCRAM_USERS:-crr app crr-src crr-dr}
USERS_ENV="$CACHE/clusters-secured/users.env"

secured_port() {
  case "$1" in
    primary) echo "${CRR_SECURED_PRIMARY_PORT:-19492}" ;;
    dr) echo "${CRR_SECURED_DR_PORT:-29492}" ;;
    *) die "unknown cluster '$1' (known: ${ALL_CLUSTERS[*]})" ;;
  esac
}
# The mTLS listener's port: the SASL_SSL port + 2 (+1 is the controller).
secured_mtls_port() { echo $(($(secured_port "$1") + 2)); }

# Was the running broker of $1 started with the MTLS listener (its command line's
# server.properties is rewritten only at 'up', so the file tells until then)?
secured_has_mtls_listener() {
  grep -q "^listeners=.*MTLS://" "$(cluster_dir "$1")/server.properties" 2>/dev/null
}

# Port open and the current server.log says the broker finished starting.
secured_answers() {
  local port=$1 name n
  port_open "$port" || return 1
  for n in "${ALL_CLUSTERS[@]}"; do [[ $(secured_port "$n") == "$port" ]] && name=$n; done
  [[ -n ${name:-} ]] || return 1
  grep -q 'Kafka Server started' "$(cluster_dir "$name")/logs/server.log" 2>/dev/null
}

# openssl: a CA, the broker certificate signed by it, a client certificate (for
# mTLS tests) and an unrelated CA (for "signed by another CA" tests). Made once.
secured_tls() {
  secured_tls_base
  secured_tls_mtls_clients
}

secured_tls_base() {
  [[ -s $TLS_DIR/broker.pem && -s $TLS_DIR/other-ca.crt ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "secured mode needs openssl"
  log "secured: making a test CA and certificates in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  local o=(-sha256 -days 3650) ca
  (
    cd "$TLS_DIR"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$ca.key" -out "$ca.crt" "${o[@]}" \
        -subj "/CN=crr test $ca" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out broker.crt "${o[@]}" -extfile broker.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=crr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt "${o[@]}" -extfile client.ext 2>/dev/null
    # Kafka's PEM key store: an unencrypted PKCS#8 key followed by the certificate chain
    openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
    cat broker.pk8 broker.crt ca.crt >broker.pem.tmp && mv broker.pem.tmp broker.pem
    rm -f ./*.csr ./*.ext broker.pk8
    chmod 600 ./*.key broker.pem
  ) || die "secured: openssl failed in $TLS_DIR"
}

# The mTLS listener's client certificates (CN=crr-mtls, clientAuth): crr-mtls.{crt,key} signed
# by the test CA, crr-mtls-other-ca.{crt,key} by the other CA (refused by the brokers). Made
# once, also in a .cache/tls made before them.
secured_tls_mtls_clients() {
  [[ -s $TLS_DIR/crr-mtls.crt && -s $TLS_DIR/crr-mtls-other-ca.crt ]] && return 0
  log "secured: making the mTLS client certificates (CN=crr-mtls) in $TLS_DIR"
  (
    cd "$TLS_DIR"
    local ca out
    printf 'extendedKeyUsage=clientAuth\n' >crr-mtls.ext
    for ca in ca other-ca; do
      out=crr-mtls
      [[ $ca == ca ]] || out=crr-mtls-$ca
      openssl req -newkey rsa:2048 -nodes -keyout "$out.key" -out "$out.csr" -subj /CN=crr-mtls 2>/dev/null
      openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -out "$out.crt" \
        -sha256 -days 3650 -extfile crr-mtls.ext 2>/dev/null
      chmod 600 "$out.key"
    done
    rm -f ./crr-mtls*.csr crr-mtls.ext
  ) || die "secured: openssl failed making the mTLS client certificates in $TLS_DIR"
}

secured_password() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20; }

# users.env: CRR_KAFKA_USER_<NAME>_PASSWORD=... for every SCRAM user (made once).
secured_users() {
  mkdir -p "$(dirname "$USERS_ENV")"
  touch "$USERS_ENV"
  chmod 600 "$USERS_ENV"
  local u var
  for u in crr-admin kafka-broker kafka-controller $SCRAM_USERS; do
    [[ $u =~ ^[A-Za-z0-9_-]+$ ]] || die "secured: bad user name '$u' in CRR_KAFKA_SCRAM_USERS"
    var=$(secured_user_var "$u")
    grep -q "^$var=" "$USERS_ENV" || echo "$var=$(secured_password)" >>"$USERS_ENV"
  done
}
secured_user_var() { echo "CRR_KAFKA_USER_$(echo "$1" | tr '[:lower:]-' '[:upper:]_')_PASSWORD"; }
secured_user_password() { sed -n "s/^$(secured_user_var "$1")=//p" "$USERS_ENV"; }

secured_admin_properties() {
  local f="$(dirname "$USERS_ENV")/admin.properties"
  cat >"$f" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="crr-admin" password="$(secured_user_password crr-admin)";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
EOF
  chmod 600 "$f"
}

secured_init() {
  secured_tls
  secured_users
  secured_admin_properties
}

# Overrides appended to server.properties (later keys win in Java properties).
secured_server_properties() {
  local port=$1 cport=$2 cpw bpw
  cpw=$(secured_user_password kafka-controller)
  bpw=$(secured_user_password kafka-broker)
  local mport=$((port + 2))
  cat <<EOF

# ---- secured mode (CRR_KAFKA_SECURED=1) ----
listeners=BROKER://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,MTLS://127.0.0.1:$mport
advertised.listeners=BROKER://127.0.0.1:$port,MTLS://127.0.0.1:$mport
inter.broker.listener.name=BROKER
listener.security.protocol.map=BROKER:SASL_SSL,CONTROLLER:SASL_SSL,MTLS:SSL
# MTLS: mutual TLS, a client certificate signed by the test CA required; its principal is the
# certificate's CN (CN=crr-mtls,... -> User:crr-mtls); a subject not starting with CN= keeps the whole DN
listener.name.mtls.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)(,.*)?\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.broker.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="kafka-broker" password="$bpw";
# SCRAM credentials live in the metadata log, so the controller listener uses PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="kafka-controller" password="$cpw" user_kafka-controller="$cpw";
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:crr-admin;User:kafka-broker;User:kafka-controller
EOF
}

# --add-scram arguments for kafka-storage format, one per line.
secured_format_args() {
  local u
  for u in crr-admin kafka-broker $SCRAM_USERS; do
    printf '%s\n%s\n' --add-scram "SCRAM-SHA-512=[name=$u,password=$(secured_user_password "$u")]"
  done
}

# The users a cluster's data already has SCRAM credentials for: rewritten when its storage is
# formatted (after a purge too), appended to by secured_ensure_users.
secured_users_marker() { echo "$(cluster_dir "$1")/scram-users"; }

# After 'up': every user of $SCRAM_USERS gets its SCRAM-SHA-512 credential on a
# running cluster formatted before the user was listed (kafka-configs --alter as crr-admin).
# Upserting a credential is idempotent; users already recorded in the marker cost nothing.
secured_ensure_users() {
  local name=$1 marker u missing=()
  marker=$(secured_users_marker "$name")
  touch "$marker"
  for u in $SCRAM_USERS; do grep -qx -- "$u" "$marker" || missing+=("$u"); done
  ((${#missing[@]})) || return 0
  for u in "${missing[@]}"; do
    if ! tool_quiet kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$(cluster_port "$name")" \
      --command-config "$(dirname "$USERS_ENV")/admin.properties" --alter --entity-type users --entity-name "$u" \
      --add-config "SCRAM-SHA-512=[password=$(secured_user_password "$u")]" >/dev/null 2>"$(cluster_dir "$name")/logs/scram-$u.log"; then
      cat "$(cluster_dir "$name")/logs/scram-$u.log" >&2
      die "cluster $name: could not add SCRAM user $u"
    fi
    echo "$u" >>"$marker"
    log "cluster $name: SCRAM user $u added"
  done
}

secured_env() {
  printf 'export CRR_KAFKA_SECURED=1\n'
  printf 'export CRR_KAFKA_CA_FILE=%q\n' "$TLS_DIR/ca.crt"
  printf 'export CRR_KAFKA_OTHER_CA_FILE=%q\n' "$TLS_DIR/other-ca.crt"
  printf 'export CRR_KAFKA_CLIENT_CERT_FILE=%q\nexport CRR_KAFKA_CLIENT_KEY_FILE=%q\n' "$TLS_DIR/client.crt" "$TLS_DIR/client.key"
  printf 'export CRR_KAFKA_ADMIN_PROPERTIES=%q\n' "$(dirname "$USERS_ENV")/admin.properties"
  printf 'export CRR_KAFKA_MTLS_PRIMARY=%q\nexport CRR_KAFKA_MTLS_DR=%q\n' "127.0.0.1:$(secured_mtls_port primary)" "127.0.0.1:$(secured_mtls_port dr)"
  printf 'export CRR_KAFKA_MTLS_CERT_FILE=%q\nexport CRR_KAFKA_MTLS_KEY_FILE=%q\n' "$TLS_DIR/crr-mtls.crt" "$TLS_DIR/crr-mtls.key"
  printf 'export CRR_KAFKA_MTLS_OTHER_CA_CERT_FILE=%q\nexport CRR_KAFKA_MTLS_OTHER_CA_KEY_FILE=%q\n' "$TLS_DIR/crr-mtls-other-ca.crt" "$TLS_DIR/crr-mtls-other-ca.key"
  [[ -f $USERS_ENV ]] && sed 's/^/export /' "$USERS_ENV"
  return 0
}

# -------------------------------------------------------------------- tool --

cmd_tool() {
  (($# >= 1)) || die "usage: tool NAME [ARGS...]   (NAME: $(echo $KNOWN_TOOLS | tr '\n' ' '))"
  local name=${1%.sh} class
  shift
  if [[ $name == kafka-run-class ]]; then
    (($# >= 1)) || die "usage: tool kafka-run-class MAIN_CLASS [ARGS...]"
    class=$1
    shift
  elif ! class=$(tool_class "$name"); then
    log "kafka.sh: unknown tool '$name'. Known tools:"
    echo "$KNOWN_TOOLS" | sed 's/^ */  /' >&2
    exit 2
  fi
  if is_fetched; then command -v java >/dev/null 2>&1 || require_java; else cmd_fetch; fi
  run_java_tool "$class" "$@"
}

# --------------------------------------------------------------------- env --

cmd_env() {
  local v
  for v in KAFKA_VERSION KAFKA_HOME KAFKA_LIBS KAFKA_CLASSPATH; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export KAFKA_LOG4J_CONFIG=%q\n' "$LOG4J_CONFIG"
  printf 'export CRR_PRIMARY_BOOTSTRAP=%q\n' "127.0.0.1:$(cluster_port primary)"
  printf 'export CRR_DR_BOOTSTRAP=%q\n' "127.0.0.1:$(cluster_port dr)"
  secured && secured_env
  is_fetched || log "kafka.sh env: note: Kafka $KAFKA_VERSION is not fetched yet (run: bash scripts/kafka.sh fetch)"
}

usage() {
  cat >&2 <<EOF
usage: bash scripts/kafka.sh <command> [args]

  fetch                    download Kafka $KAFKA_VERSION jars into .cache/kafka/$KAFKA_VERSION/libs
  up [NAME...]             start clusters (default: ${ALL_CLUSTERS[*]}) and wait until ready
  down [--purge] [NAME...] stop clusters (SIGTERM, SIGKILL after ${STOP_TIMEOUT}s); --purge deletes data
  restart NAME             down + up of one cluster, keeping data
  kill NAME                SIGKILL a cluster's broker (crash tests)
  status                   show running/stopped, address and pid per cluster
  tool TOOL [ARGS...]      run a Kafka CLI tool, e.g. tool kafka-topics --bootstrap-server 127.0.0.1:19092 --list
  env                      print shell exports: eval "\$(bash scripts/kafka.sh env)"

clusters: primary 127.0.0.1:\${CRR_PRIMARY_PORT:-19092}, dr 127.0.0.1:\${CRR_DR_PORT:-29092} (controller = port+1)
secured:  CRR_KAFKA_SECURED=1 before any command: SASL_SSL + SCRAM-SHA-512 + ACLs on
          127.0.0.1:\${CRR_SECURED_PRIMARY_PORT:-19492} and \${CRR_SECURED_DR_PORT:-29492},
          mTLS (User:crr-mtls) on port+2 (see the header)
EOF
}

cmd_fetch() {
  is_fetched || rm -rf "$KAFKA_HOME/cds" # CDS archives are tied to the jars
  maven_fetch "broker, CLI tools, MirrorMaker 2" "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "connect-mirror-$KAFKA_VERSION.jar"
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case "$cmd" in
    fetch) cmd_fetch "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    restart) cmd_restart "$@" ;;
    kill) cmd_kill "$@" ;;
    status) cmd_status "$@" ;;
    tool) cmd_tool "$@" ;;
    env) cmd_env "$@" ;;
    -h | --help | help) usage ;;
    *)
      [[ -n $cmd ]] && log "kafka.sh: unknown command '$cmd'"
      usage
      exit 2
      ;;
  esac
}

main "$@"
