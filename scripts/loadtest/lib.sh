# Shared by scripts/loadtest/run, replicas and profile (sourced, not run):
# the scratch directory and binary, scratch PostgreSQL databases, servers
# started on loopback, and everything stopped and dropped on exit.
#
# After sourcing: $work holds the samplit binary ($SAMPLIT_BIN if set, else
# built from ./cmd/samplit); $KEY is the bootstrap key every call uses.

KEY=sk_loadtestkeya_ABCDEFGHIJKLMNOPQRSTUVWXYZ
PG=${SAMPLIT_TEST_POSTGRES_URL:-}
# The assignment experiment every script loads: three variants, binary.
ASSIGN_EXPERIMENT='{"key":"load-assign","metric":"binary","variants":[{"key":"a"},{"key":"b"},{"key":"c"}],"start":true}'

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
lt_pids=()
lt_scratch=()
lt_cleanup() {
  local p d
  for p in "${lt_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${lt_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${lt_scratch[@]}"; do
    psql "$PG" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap lt_cleanup EXIT
if [ -n "${SAMPLIT_BIN:-}" ]; then cp "$SAMPLIT_BIN" "$work/samplit"; else go build -o "$work/samplit" ./cmd/samplit; fi

# waitup ADDR: waits for /healthz at ADDR, up to 10 s.
waitup() {
  for _ in $(seq 1 100); do curl -fs "http://$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "server at $1 did not start" >&2
  return 1
}

# scratch_db NAME: creates the database NAME next to $PG's and sets
# $scratch_url to its URL; it is dropped on exit (or by drop_db). Not to be
# called in $(...): the subshell would forget to drop it.
scratch_db() {
  [ -n "$PG" ] || { echo "SAMPLIT_TEST_POSTGRES_URL is not set" >&2; return 1; }
  psql "$PG" -qc "CREATE DATABASE $1" >/dev/null
  lt_scratch+=("$1")
  scratch_url=$(sed -E "s#/[^/?]+(\?|$)#/$1\1#" <<<"$PG")
}

# fresh_db BACKEND NAME: a fresh database for one server. Sets $db (serve's
# --db: a file in $work for sqlite, or the scratch PostgreSQL database NAME,
# dropped on exit), $scratch (that database's name; empty for sqlite) and
# $extra (serve's flags for it). Not to be called in $(...), as scratch_db.
fresh_db() {
  scratch=
  extra=()
  case $1 in
    sqlite) db="$work/load.db" ;;
    postgres)
      scratch=$2
      scratch_db "$scratch"
      db=$scratch_url
      extra=(--state-key "$(state_key)") ;;
    *) echo "backend: sqlite or postgres" >&2; return 1 ;;
  esac
}

# drop_db NAME: drops a scratch database now.
drop_db() { psql "$PG" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null; }

# serve ADDR DB LOG [flags...]: starts a server (stopped on exit), waits for
# it, and leaves its pid in $served. The per-key rate limit is off: one key
# makes every call, and the limit would measure itself, not the server.
serve() {
  local addr=$1 db=$2 log=$3
  shift 3
  SAMPLIT_BOOTSTRAP_KEY=$KEY "$work/samplit" serve --addr "$addr" --db "$db" --log-level warn --rate-limit 0 "$@" 2>"$log" &
  served=$!
  lt_pids+=("$served")
  waitup "$addr"
}

# stop PID: stops a server now.
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# api ADDR METHOD PATH [BODY]: one call with the key; fails on an error status.
api() {
  curl -fsS -X "$2" "http://$1$3" -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" ${4:+-d "$4"} >/dev/null
}

# ticks PID...: the summed user+system CPU (clock ticks) of the processes.
ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # Fields 14 and 15, counted after the ")" that ends the command name.
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}

# backends NAME: the pids of the PostgreSQL backends serving database NAME.
backends() { psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$1'"; }

# state_key: a fresh --state-key for a PostgreSQL server.
state_key() { head -c 32 /dev/urandom | base64; }
