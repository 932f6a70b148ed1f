# Shared by scripts/kafka.sh and scripts/s3.sh: Java tools fetched from Maven Central into
# .cache/ and run as local servers. Source it after setting:
#   SCRIPT_NAME   e.g. kafka.sh (prefix of error messages)
#   TOOL_NAME     e.g. Kafka;  TOOL_VERSION e.g. 4.3.1
#   POM           the pom whose runtime dependencies are the tool's jars
#   MARKER        file recording "<version> <pom sha256>" once fetched
#   TOOL_LIBS     where the jars go;  M2_REPO  Maven's local repository
#   VERSION_PROP  the pom property that takes TOOL_VERSION (e.g. kafka.version)

log() { printf '%s\n' "$*" >&2; }
now() { # microseconds
  if [[ -n ${EPOCHREALTIME:-} ]]; then echo "${EPOCHREALTIME/[.,]/}"; else echo $(($(date +%s) * 1000000)); fi
}
since() { local us=$(($(now) - $1)); printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000)); }
die() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Exits 3 with the install command when java (and, with "mvn", Maven) is missing or < 17.
require_java() {
  local missing=()
  command -v java >/dev/null 2>&1 || missing+=(java)
  if [[ ${1:-} == mvn ]]; then command -v mvn >/dev/null 2>&1 || missing+=(mvn); fi
  if ((${#missing[@]})); then
    log "$SCRIPT_NAME: missing ${missing[*]}: $TOOL_NAME $TOOL_VERSION needs Java 17+ (and Maven to fetch it)."
    log "Install them with:"
    log "  apt-get install -y openjdk-17-jre-headless maven"
    exit 3
  fi
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
  if [[ -n $v && ${v%%.*} -lt 17 ]]; then
    log "$SCRIPT_NAME: java is version $v but $TOOL_NAME $TOOL_VERSION needs Java 17+."
    log "Install it with:"
    log "  apt-get install -y openjdk-17-jre-headless maven"
    exit 3
  fi
}

pom_digest() { sha256sum "$POM" | cut -d' ' -f1; }

is_fetched() {
  [[ -f $MARKER ]] && [[ $(cat "$MARKER" 2>/dev/null) == "$TOOL_VERSION $(pom_digest)" ]]
}

ensure_fetched() {
  if is_fetched; then require_java; else cmd_fetch; fi
}

# maven_fetch DESCRIPTION REQUIRED_JAR...: copies the pom's runtime dependencies into TOOL_LIBS
# (through a temporary folder, under a lock, so concurrent fetches are safe), checks that the
# required jars came, and records the marker. Prints Maven's one line per download.
maven_fetch() {
  local description=$1; shift
  if is_fetched; then
    log "$TOOL_NAME $TOOL_VERSION already fetched ($TOOL_LIBS)"
    return 0
  fi
  require_java mvn
  mkdir -p "$(dirname "$TOOL_LIBS")"
  exec 9>"$(dirname "$TOOL_LIBS")/.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if is_fetched; then
    log "$TOOL_NAME $TOOL_VERSION already fetched ($TOOL_LIBS)"
    return 0
  fi
  log "Fetching $TOOL_NAME $TOOL_VERSION ($description) from Maven Central..."
  local t0 tmp jar
  t0=$(now)
  tmp="$(dirname "$TOOL_LIBS")/libs.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # quiet: Maven's own output goes to a log file, shown (its end) only when the fetch fails
  local mvnlog="$(dirname "$TOOL_LIBS")/fetch.log"
  if ! mvn -B -q --no-transfer-progress -f "$POM" -Dmaven.repo.local="$M2_REPO" -D"$VERSION_PROP"="$TOOL_VERSION" \
      -Dstyle.color=never dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvnlog" 2>&1; then
    tail -n 40 "$mvnlog" | sed 's/\x1b\[[0-9;]*m//g' >&2
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed (the end of $mvnlog is above)"
  fi
  for jar in "$@"; do
    [[ -f $tmp/$jar ]] || { rm -rf "$tmp"; die "expected $jar missing after mvn run"; }
  done
  rm -rf "$TOOL_LIBS"
  mv "$tmp" "$TOOL_LIBS"
  echo "$TOOL_VERSION $(pom_digest)" >"$MARKER"
  log "$TOOL_NAME $TOOL_VERSION fetched: $(find "$TOOL_LIBS" -name '*.jar' | wc -l) jars in $TOOL_LIBS ($(since "$t0") s)"
}
