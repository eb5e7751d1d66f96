#!/usr/bin/env bash
# Benchmarks side by side (issue 7): the service on its embedded default backend and a bare
# axum server (the ceiling), on this machine, loopback only.
#
# For each scenario, a fresh service (empty DATA_DIR, SNS_CERT_DIR with a certificate
# generated now) is started and measured: time from process start to the first 200 on
# /healthz, idle RSS, then requests/s and latency at each concurrency (closed loop, one
# request in flight per connection, each run bounded in requests and seconds), its CPU time
# per request, and peak RSS (VmHWM) after the largest concurrency. Prints a markdown table
# and keeps every JSON report in the output directory.
#
#   scripts/bench.sh [--seconds S] [--concurrency "1 16 64 256"] [--scenarios "..."]
#                    [--out DIR] [--no-build]
#
# Scenarios: dup-sqsd dup-sns invalid forged-sns new-sns (see examples/loadgen.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/perf-lib.sh disable=SC1091
source scripts/perf-lib.sh

SECS=10
CONCURRENCIES="1 16 64 256"
SCENARIOS="dup-sqsd dup-sns invalid forged-sns new-sns"
OUT=target/bench
BUILD=1
# Upper bounds on requests per run (the time bound usually ends a run first). Every new-sns
# request is signed beforehand, so its bound is kept to what the ledger can take in time.
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
NEW_SNS_REQUESTS=${NEW_SNS_REQUESTS:-6000}
# Storm control folds new alarms into one case after STORM_CAP cases an hour; the bench
# measures case opening itself, so the cap is lifted unless set.
BENCH_STORM_CAP=${BENCH_STORM_CAP:-1000000}

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while (($#)); do
  case $1 in
    --seconds) SECS=${2:?}; shift 2 ;;
    --concurrency) CONCURRENCIES=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

for tool in openssl python3 jq; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 1; }
done

trap perf_cleanup EXIT
trap 'exit 130' INT TERM

if ((BUILD)); then
  echo "== cargo build --release --bins --examples" >&2
  cargo build --release --bins --examples >&2
fi
BIN=target/release/cw-support-api
LOADGEN=target/release/examples/loadgen
BARE=target/release/examples/bare_axum

perf_tmpdir
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)
# Longest a run can take: its time bound, building its requests, and the loadgen's own
# hard stop; every server is killed after this whatever happens.
MAX_LIFE=$((3600 + SECS * 20))

echo "== keys (openssl): $(perf_cert_url)" >&2
perf_gen_keys "$PERF_TMP/keys"

# ---- disk: what one durable write costs here ------------------------------------------------

echo "== fsync cost of the disk under $PERF_TMP" >&2
dd_line=$(dd if=/dev/zero of="$PERF_TMP/dsync.bin" bs=4k count=500 oflag=dsync 2>&1 | tail -n 1)
dd_secs=$(sed -E 's/.* copied, ([0-9.,]+) s.*/\1/' <<<"$dd_line" | tr , .)
DD_MS=$(awk -v s="$dd_secs" 'BEGIN { printf "%.3f", s * 1000 / 500 }')
rm -f "$PERF_TMP/dsync.bin"
SQLITE_MS=$(python3 - "$PERF_TMP/sqlite-fsync.db" <<'EOF'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
db.execute("CREATE TABLE t (x TEXT)")
n = 300
t0 = time.perf_counter()
for i in range(n):
    db.execute("BEGIN")
    db.execute("INSERT INTO t VALUES (?)", (f"row {i}",))
    db.execute("COMMIT")
print(f"{(time.perf_counter() - t0) * 1000 / n:.3f}")
EOF
)
echo "   dd oflag=dsync 4 KiB: $DD_MS ms per write; SQLite WAL synchronous=FULL: $SQLITE_MS ms per commit" >&2

# ---- one server -----------------------------------------------------------------------------

SERVER_PID=""
STARTUP_MS=""
IDLE_KB=""

# Starts "$@" in the background with the given port, measures the first 200 on /healthz.
start_server() {
  local port=$1 t0
  shift
  t0=$EPOCHREALTIME
  "$@" 2>>"$PERF_TMP/server.log" &
  SERVER_PID=$!
  perf_track "$SERVER_PID" "$MAX_LIFE"
  STARTUP_MS=$("$LOADGEN" wait-healthz --url "http://127.0.0.1:$port/healthz" --since "$t0" |
    jq -r .ready_ms)
  sleep 1
  IDLE_KB=$(perf_status_kb "$SERVER_PID" VmRSS)
}

start_service() {
  local port=$1 data=$2
  rm -rf "$data"
  start_server "$port" env BIND=127.0.0.1 PORT="$port" DATA_DIR="$data" \
    SNS_CERT_DIR="$PERF_TMP/keys/certs" \
    SNS_TOPIC_ARNS="arn:aws:sns:us-east-1:123456789012:support-cases" \
    STORM_CAP="$BENCH_STORM_CAP" LOG_FORMAT=json RUST_LOG=warn "$BIN" serve
}

# One loadgen run against the current server; appends its report (plus server CPU and
# memory readings) to $RESULTS.
measure() {
  local target=$1 scenario=$2 conc=$3 port=$4 requests=$MAX_REQUESTS before after report
  [[ $scenario == new-sns ]] && requests=$NEW_SNS_REQUESTS
  before=$(perf_cpu_ticks "$SERVER_PID")
  report=$("$LOADGEN" run --url "http://127.0.0.1:$port/serviceme" --scenario "$scenario" \
    --concurrency "$conc" --requests "$requests" --seconds "$SECS" \
    --key "$PERF_TMP/keys/key.pem" --forged-key "$PERF_TMP/keys/forged.pem" \
    --cert-url "$(perf_cert_url)" --run-id "$target-$scenario-c$conc")
  after=$(perf_cpu_ticks "$SERVER_PID")
  jq -c --arg target "$target" --argjson cpu "$((after - before))" --argjson tck "$CLK_TCK" \
    --argjson rss "$(perf_status_kb "$SERVER_PID" VmRSS)" \
    --argjson hwm "$(perf_status_kb "$SERVER_PID" VmHWM)" \
    --argjson startup "$STARTUP_MS" --argjson idle "$IDLE_KB" \
    '. + {target: $target, server_cpu_s: ($cpu / $tck), rss_kb: $rss, hwm_kb: $hwm,
          startup_ms: $startup, idle_rss_kb: $idle}' <<<"$report" >>"$RESULTS"
  jq -r '"   \(.target) \(.scenario) c=\(.concurrency): \(.rps) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, \(.outcomes)"' \
    <<<"$(tail -n 1 "$RESULTS")" >&2
}

# ---- the ceiling ----------------------------------------------------------------------------

port=$(perf_free_port)
echo "== bare axum (ceiling) on port $port" >&2
start_server "$port" "$BARE" --port "$port"
echo "   first 200 after $STARTUP_MS ms, idle RSS $IDLE_KB kB" >&2
for c in $CONCURRENCIES; do
  measure ceiling dup-sqsd "$c" "$port"
done
perf_stop "$SERVER_PID"

# ---- the service, one fresh instance per scenario ------------------------------------------

for scenario in $SCENARIOS; do
  port=$(perf_free_port)
  echo "== cw-support-api: $scenario on port $port" >&2
  start_service "$port" "$PERF_TMP/data-$scenario"
  echo "   first 200 after $STARTUP_MS ms, idle RSS $IDLE_KB kB" >&2
  for c in $CONCURRENCIES; do
    measure service "$scenario" "$c" "$port"
  done
  perf_stop "$SERVER_PID"
done

if grep -q '"level":"ERROR"' "$PERF_TMP/server.log" 2>/dev/null; then
  echo "== the service logged errors:" >&2
  grep '"level":"ERROR"' "$PERF_TMP/server.log" | head -n 5 >&2
fi

# ---- the table ------------------------------------------------------------------------------

python3 - "$RESULTS" "$DD_MS" "$SQLITE_MS" "$SECS" <<'EOF' | tee "$OUT/table.md"
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1])]
dd_ms, sqlite_ms, secs = sys.argv[2], sys.argv[3], sys.argv[4]
ceiling = {r["concurrency"]: r["rps"] for r in rows if r["target"] == "ceiling"}

def mb(kb):
    return f"{kb / 1024:.1f}"

print(f"Each run: closed loop, one request in flight per connection, {secs} s or the request bound.")
print()
print("| scenario | conc. | req/s | p50 ms | p99 ms | vs ceiling | server CPU µs/req | answers |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    name = "bare axum (ceiling)" if r["target"] == "ceiling" else r["scenario"]
    c = r["concurrency"]
    ratio = r["rps"] / ceiling[c] if ceiling.get(c) else float("nan")
    n = max(r["exchanges"], 1)
    cpu_us = r["server_cpu_s"] * 1e6 / n
    answers = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]))
    if r["target"] == "ceiling":
        answers = ", ".join(f"{k} {v}" for k, v in r["status"].items())
    if r["transport_errors"]:
        answers += f"; transport errors {r['transport_errors']}"
    print(f"| {name} | {c} | {r['rps']:.0f} | {r['latency_ms']['p50']:.2f} | "
          f"{r['latency_ms']['p99']:.2f} | {ratio:.0%} | {cpu_us:.0f} | {answers} |")

print()
print("| process | first 200 on /healthz | idle RSS | RSS after the last run | peak RSS (VmHWM) |")
print("|---|---:|---:|---:|---:|")
by = {}
for r in rows:
    by.setdefault((r["target"], r["scenario"]), []).append(r)
for (target, scenario), rs in by.items():
    last = max(rs, key=lambda r: r["concurrency"])
    name = "bare axum" if target == "ceiling" else f"service ({scenario})"
    print(f"| {name} | {rs[0]['startup_ms']:.1f} ms | {mb(rs[0]['idle_rss_kb'])} MB | "
          f"{mb(last['rss_kb'])} MB at {last['concurrency']} conns | {mb(last['hwm_kb'])} MB |")
svc = [r for r in rows if r["target"] == "service"]
if svc:
    starts = sorted({(r["scenario"], r["startup_ms"]) for r in svc})
    s = [v for _, v in starts]
    idle = [r["idle_rss_kb"] for r in svc]
    print()
    print(f"Service start-up to first 200: median {statistics.median(s):.1f} ms "
          f"(min {min(s):.1f}, max {max(s):.1f}, {len(s)} starts); idle RSS median "
          f"{mb(statistics.median(idle))} MB; peak RSS (VmHWM) over all runs "
          f"{mb(max(r['hwm_kb'] for r in svc))} MB.")
print(f"Disk: dd oflag=dsync 4 KiB write {dd_ms} ms; SQLite WAL synchronous=FULL commit {sqlite_ms} ms.")
EOF
echo "(reports: $RESULTS, table: $OUT/table.md)" >&2
