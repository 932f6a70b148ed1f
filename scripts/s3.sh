#!/usr/bin/env bash
# scripts/s3.sh - a real S3 API server for local tests and the demo.
#
# Fetches S3Proxy (https://github.com/gaul/s3proxy, org.gaul:s3proxy on Maven
# Central: an implementation of the S3 REST API in front of a storage backend)
# as plain jars via Maven (scripts/s3/pom.xml) and runs one server on loopback
# with its filesystem backend:
#
#   s3  http://127.0.0.1:19000   port: $CRR_S3_PORT
#       path-style only (no virtual-host buckets), region us-east-1,
#       AWS signature V2 or V4, access key "crr", secret key "crr-secret-key"
#
# Everything lives under the git-ignored .cache/ at the repo root:
#   .cache/m2/                         Maven repository (shared with kafka.sh)
#   .cache/s3proxy/$S3PROXY_VERSION/   libs/ (all jars) + .fetched marker
#   .cache/s3/                         s3proxy.conf, pid, data/ (one folder per
#                                      bucket), logs/s3proxy.log
#
# Usage: bash scripts/s3.sh <command>   (any cwd; see `usage` below)
#   fetch | up | down [--purge] | status | env
#
# Version pin: S3PROXY_VERSION=4.1.0, the newest release on Central; built for
# Java 17 (class files v61, <java.version>17</java.version> in its pom). From
# 4.0 S3Proxy no longer uses Apache jclouds (retired to the Attic) but its own
# blob stores; `jclouds.provider=filesystem` is kept as an alias of its
# `filesystem-nio2` store (objects are plain files under the bucket folder,
# metadata in extended attributes). Central has no jar-with-dependencies for
# S3Proxy, so the pom resolves its runtime tree (80 jars, 30 MB, without the
# SDKs of the Azure/GCS/Swift/SFTP backends) and imports the BOMs S3Proxy's
# own build imports (see the comments there).
#
# Filesystem-backend limits (real S3 has none of them): a key cannot also be
# a "folder" of other keys (with `a/b` stored, a PUT of `a/b/c` fails with
# 500 InternalError: the key is a file, not a directory), and `..` segments
# in a key are resolved by the HTTP layer (`x/../y` is stored as `y`).
#
# Environment knobs:
#   CRR_S3_PORT          port (default 19000)
#   CRR_S3_HEAP_OPTS     JVM heap (default -Xms64m -Xmx512m)
#   CRR_S3_LOG_LEVEL     S3Proxy log level (default INFO; DEBUG logs each request)
#   CRR_S3_UP_TIMEOUT    seconds to wait for readiness (default 60)
#   CRR_S3_OPTS          extra JVM options
set -euo pipefail

S3PROXY_VERSION=4.1.0
S3_IDENTITY=crr
S3_CREDENTIAL=crr-secret-key
S3_REGION=us-east-1

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
mkdir -p "$ROOT/.cache"
# the physical path: a second checkout whose .cache is a symlink to this one must recognise the same processes
CACHE=$(cd -- "$ROOT/.cache" && pwd -P)
POM="$SCRIPT_DIR/s3/pom.xml"
LOGBACK_CONFIG="$SCRIPT_DIR/s3/logback.xml"
M2_REPO="$CACHE/m2"
S3PROXY_HOME="$CACHE/s3proxy/$S3PROXY_VERSION"
S3PROXY_LIBS="$S3PROXY_HOME/libs"
MARKER="$S3PROXY_HOME/.fetched"
SCRIPT_NAME=s3.sh
TOOL_NAME=S3Proxy
TOOL_VERSION=$S3PROXY_VERSION
TOOL_LIBS="$S3PROXY_LIBS"
VERSION_PROP=s3proxy.version
# shellcheck source=scripts/lib/jvm-tool.sh
source "$SCRIPT_DIR/lib/jvm-tool.sh"
S3_DIR="$CACHE/s3"
DATA_DIR="$S3_DIR/data"
LOG_DIR="$S3_DIR/logs"
LOG_FILE="$LOG_DIR/s3proxy.log"
CONF="$S3_DIR/s3proxy.conf"
PID_FILE="$S3_DIR/pid"
PORT=${CRR_S3_PORT:-19000}
ENDPOINT="http://127.0.0.1:$PORT"
UP_TIMEOUT=${CRR_S3_UP_TIMEOUT:-60}
STOP_TIMEOUT=30


# ----------------------------------------------------------------- helpers --




# Serialise up/down (e.g. parallel test runs all calling 'up').
# fd 8 holds the lock; the server started from here must close it (8>&-).
LOCKED=0
lock_s3() {
  ((LOCKED)) && return 0
  mkdir -p "$S3_DIR"
  exec 8>"$S3_DIR/.lock"
  LOCKED=1
  command -v flock >/dev/null 2>&1 || return 0
  if ! flock -n 8; then
    log "waiting for another 's3.sh up/down' to finish..."
    flock -w 300 8 || die "timed out waiting for $S3_DIR/.lock"
  fi
}


# The pid in the pid file if it is a live S3Proxy started by this script
# (its command line names our config file).
server_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 0
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 0
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$CONF"; then echo "$pid"; fi
}

# Does an S3 server answer on 127.0.0.1:$1? An anonymous GET / (ListBuckets)
# over bash's /dev/tcp must come back as an S3 XML document (with auth on,
# S3Proxy answers 403 <Error><Code>AccessDenied</Code>...). Takes milliseconds.
answers() {
  local out
  out=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "GET / HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$1" >&3
    head -c 4096 <&3' _ "$1" 2>/dev/null) || return 1
  [[ $out == HTTP/1.* ]] || return 1
  [[ $out == *"<Error>"* || $out == *"<ListAllMyBucketsResult"* ]]
}

# ------------------------------------------------------------------- fetch --



# ---------------------------------------------------------------------- up --

write_conf() {
  # the secret is a fixed local test credential (also printed by 'env')
  cat >"$CONF" <<EOF
# Generated by scripts/s3.sh - rewritten on every 'up'.
s3proxy.endpoint=$ENDPOINT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$S3_IDENTITY
s3proxy.credential=$S3_CREDENTIAL
# empty: path-style requests only (http://127.0.0.1:$PORT/BUCKET/KEY)
s3proxy.virtual-host=
jclouds.provider=filesystem
jclouds.identity=$S3_IDENTITY
jclouds.credential=$S3_CREDENTIAL
jclouds.filesystem.basedir=$DATA_DIR
EOF
}

start_server() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  write_conf
  # keep the previous run's log
  [[ -f $LOG_FILE ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  rm -f "$PID_FILE"
  local heap=${CRR_S3_HEAP_OPTS:--Xms64m -Xmx512m}
  # setsid+nohup: the server survives this script and its process group.
  # The inner shell writes its own pid and then execs java, so pid == java.
  # shellcheck disable=SC2086  # heap / CRR_S3_OPTS are intentionally word-split
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlogback.configurationFile="$LOGBACK_CONFIG" \
    -Dcrr.s3.log.level="${CRR_S3_LOG_LEVEL:-INFO}" \
    ${CRR_S3_OPTS:-} -cp "$S3PROXY_LIBS/*" org.gaul.s3proxy.Main --properties "$CONF" \
    >"$LOG_FILE" 2>&1 </dev/null 8>&- 9>&- &
  local i
  for i in $(seq 1 50); do
    [[ -s $PID_FILE ]] && return 0
    sleep 0.1
  done
  die "S3Proxy did not start (see $LOG_FILE)"
}

cmd_up() {
  (($# == 0)) || die "up takes no arguments"
  ensure_fetched
  lock_s3
  local t0 pid
  t0=$(now)
  pid=$(server_pid)
  if [[ -n $pid ]]; then
    if answers "$PORT"; then
      log "s3 already running on $ENDPOINT (pid $pid)"
      return 0
    fi
    log "s3: S3Proxy pid $pid is running but not answering yet; waiting"
  else
    if port_open "$PORT"; then
      local who=""
      command -v ss >/dev/null 2>&1 && who=$(ss -Htlnp "sport = :$PORT" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -1)
      die "s3: port 127.0.0.1:$PORT is already in use by another process${who:+ ($who)}; stop it or set CRR_S3_PORT"
    fi
    start_server
    log "s3: starting S3Proxy $S3PROXY_VERSION (pid $(cat "$PID_FILE"), data $DATA_DIR, log $LOG_FILE)"
  fi
  local deadline=$((SECONDS + UP_TIMEOUT)) dots=0
  while :; do
    if [[ -z $(server_pid) ]]; then
      ((dots)) && printf '\n' >&2
      log "s3: S3Proxy exited during start-up; last lines of $LOG_FILE:"
      tail -n 30 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    if answers "$PORT"; then
      ((dots)) && printf '\n' >&2
      log "s3 ready on $ENDPOINT ($(since "$t0") s)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      ((dots)) && printf '\n' >&2
      log "s3: not ready after ${UP_TIMEOUT}s; last lines of $LOG_FILE:"
      tail -n 30 "$LOG_FILE" >&2 || true
      die "timed out waiting for S3Proxy (left running; 'down' stops it)"
    fi
    printf '.' >&2
    dots=1
    sleep 0.25
  done
}

# -------------------------------------------------------------------- down --

cmd_down() {
  local purge=0 a
  for a in "$@"; do
    case "$a" in
      --purge) purge=1 ;;
      *) die "down: unknown argument $a (usage: down [--purge])" ;;
    esac
  done
  lock_s3
  local pid
  pid=$(server_pid)
  if [[ -z $pid ]]; then
    rm -f "$PID_FILE"
    log "s3: not running"
  else
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "s3: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    log "s3: stopped (pid $pid)"
  fi
  if ((purge)) && [[ -d $DATA_DIR ]]; then
    rm -rf "$DATA_DIR"
    log "s3: data purged ($DATA_DIR)"
  fi
}

cmd_status() {
  local pid state
  pid=$(server_pid)
  if [[ -n $pid ]]; then
    if answers "$PORT"; then state=running; else state=starting; fi
  else
    state=stopped
    [[ -f $PID_FILE ]] && state="stopped (stale pid file)"
    pid=-
  fi
  printf '%-8s %-8s %-24s %s\n' SERVICE STATE ENDPOINT PID
  printf '%-8s %-8s %-24s %s\n' s3 "$state" "$ENDPOINT" "$pid"
}

# --------------------------------------------------------------------- env --

cmd_env() {
  printf 'export CRR_S3_ENDPOINT=%q\n' "$ENDPOINT"
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$S3_IDENTITY"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$S3_CREDENTIAL"
  printf 'export AWS_REGION=%q\n' "$S3_REGION"
}

usage() {
  cat >&2 <<EOF
usage: bash scripts/s3.sh <command> [args]

  fetch          download S3Proxy $S3PROXY_VERSION jars into .cache/s3proxy/$S3PROXY_VERSION/libs
  up             start S3Proxy (filesystem backend, .cache/s3/data) and wait until it answers
  down [--purge] stop it (SIGTERM, SIGKILL after ${STOP_TIMEOUT}s); --purge also deletes .cache/s3/data
  status         show running/stopped, endpoint and pid
  env            print shell exports: eval "\$(bash scripts/s3.sh env)"

endpoint: http://127.0.0.1:\${CRR_S3_PORT:-19000} (path-style), region $S3_REGION,
access key $S3_IDENTITY, secret key $S3_CREDENTIAL (AWS signature V2 or V4)
EOF
}

cmd_fetch() {
  local fresh=1
  is_fetched && fresh=0
  maven_fetch "S3 API server" "s3proxy-$S3PROXY_VERSION.jar"
  if [[ $fresh == 1 && -n $(server_pid) ]]; then
    log "s3.sh: note: the running S3Proxy (pid $(server_pid)) still uses the replaced jars; restart it: bash scripts/s3.sh down && bash scripts/s3.sh up"
  fi
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case "$cmd" in
    fetch) cmd_fetch "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    -h | --help | help) usage ;;
    *)
      [[ -n $cmd ]] && log "s3.sh: unknown command '$cmd'"
      usage
      exit 2
      ;;
  esac
}

main "$@"
