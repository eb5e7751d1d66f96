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
#                    [--out DIR] [--no-build] [--no-aws] [--ledger N]
#
# --ledger N starts each service on a ledger already holding N past decisions
# (scripts/seed-ledger.py), to show what a request costs as the ledger grows.
#
# Then, unless --no-aws, scripts/bench-aws.sh: the aws backend and a Flask + boto3 peer on
# one canned AWS endpoint (nginx), with the AWS calls per outcome (needs nginx).
#
# Scenarios: dup-sqsd dup-sns invalid forged-sns new-sns (see examples/loadgen.rs), and
# always healthz first: the service's own GET /healthz, what "vs /healthz" is relative to.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/perf-lib.sh disable=SC1091
source scripts/perf-lib.sh

SECS=10
CONCURRENCIES="1 16 64 256"
SCENARIOS="healthz dup-sqsd dup-sns invalid forged-sns new-sns"
OUT=target/bench
BUILD=1
AWS=1
LEDGER=0
# Upper bounds on requests per run (the time bound usually ends a run first). Every new-sns
# request is signed beforehand, so its bound is kept to what the ledger can take in time.
MAX_REQUESTS=${MAX_REQUESTS:-2000000}
NEW_SNS_REQUESTS=${NEW_SNS_REQUESTS:-6000}
# Storm control folds new alarms into one case after STORM_CAP cases an hour; the bench
# measures case opening itself, so the cap is lifted unless set.
BENCH_STORM_CAP=${BENCH_STORM_CAP:-1000000}

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while (($#)); do
  case $1 in
    --seconds) SECS=${2:?}; shift 2 ;;
    --concurrency) CONCURRENCIES=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-aws) AWS=0; shift ;;
    --ledger) LEDGER=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

# The ratio to the service's own /healthz is in every table.
[[ " $SCENARIOS " == *" healthz "* ]] || SCENARIOS="healthz $SCENARIOS"

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

# Prints "<ms per 4 KiB write + fsync over an existing file> <ms per one-row SQLite commit>"
# measured in a loop (loadgen fsync: the same SQLite and settings as the local ledger).
# On this kind of shared virtual disk, back-to-back syncs in a loop can cost several times
# what the service's own fsyncs do; see sample_service_fsync for those.
measure_fsync() {
  "$LOADGEN" fsync --dir "$PERF_TMP" | jq -r '"\(.fsync_overwrite_ms) \(.sqlite_commit_ms)"'
}

echo "== fsync cost of the disk under $PERF_TMP" >&2
read -r DD_MS SQLITE_MS < <(measure_fsync)
echo "   write + fsync: $DD_MS ms; SQLite commit (WAL, synchronous=FULL): $SQLITE_MS ms (isolated loop)" >&2

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

SEEDED=""
start_service() {
  local port=$1 data=$2
  rm -rf "$data"
  if ((LEDGER > 0)); then
    # One seeded ledger, copied for each service.
    if [[ -z $SEEDED ]]; then
      SEEDED="$PERF_TMP/seeded"
      DATA_DIR="$SEEDED" "$BIN" check >/dev/null 2>&1 || true
      python3 scripts/seed-ledger.py "$SEEDED" "$LEDGER" >&2
    fi
    cp -r "$SEEDED" "$data"
  fi
  start_server "$port" env BIND=127.0.0.1 PORT="$port" DATA_DIR="$data" \
    SNS_CERT_DIR="$PERF_TMP/keys/certs" \
    SNS_TOPIC_ARNS="arn:aws:sns:us-east-1:123456789012:support-cases" \
    STORM_CAP="$BENCH_STORM_CAP" LOG_FORMAT=json RUST_LOG=warn "$BIN" serve
}

# One loadgen run against the current server; appends its report (plus server CPU and
# memory readings) to $RESULTS.
measure() {
  local target=$1 scenario=$2 conc=$3 port=$4 requests=$MAX_REQUESTS before after report load
  local path=/serviceme
  [[ $scenario == new-sns ]] && requests=$NEW_SNS_REQUESTS
  [[ $scenario == healthz ]] && path=/healthz
  # The machine's load just before (other work on it skews the numbers).
  load=$(cut -d ' ' -f 1 /proc/loadavg)
  before=$(perf_cpu_ticks "$SERVER_PID")
  report=$("$LOADGEN" run --url "http://127.0.0.1:$port$path" --scenario "$scenario" \
    --concurrency "$conc" --requests "$requests" --seconds "$SECS" \
    --key "$PERF_TMP/keys/key.pem" --forged-key "$PERF_TMP/keys/forged.pem" \
    --cert-url "$(perf_cert_url)" --run-id "$target-$scenario-c$conc")
  after=$(perf_cpu_ticks "$SERVER_PID")
  jq -c --arg target "$target" --argjson cpu "$((after - before))" --argjson tck "$CLK_TCK" \
    --argjson rss "$(perf_status_kb "$SERVER_PID" VmRSS)" \
    --argjson hwm "$(perf_status_kb "$SERVER_PID" VmHWM)" \
    --argjson startup "$STARTUP_MS" --argjson idle "$IDLE_KB" --argjson load "$load" \
    '. + {target: $target, server_cpu_s: ($cpu / $tck), rss_kb: $rss, hwm_kb: $hwm,
          startup_ms: $startup, idle_rss_kb: $idle, load1: $load}' <<<"$report" >>"$RESULTS"
  jq -r '"   \(.target) \(.scenario) c=\(.concurrency): \(.rps) req/s, p50 \(.latency_ms.p50) ms, p99 \(.latency_ms.p99) ms, \(.outcomes)"' \
    <<<"$(tail -n 1 "$RESULTS")" >&2
}

# The service's own fsyncs: 3 s of new-sns at 16 connections under `strace -T` (slower
# than untraced, so not in the table), for how long each fsync took and how many a case
# needs. Writes "<fsyncs per case> <p50 ms> <mean ms> <p90 ms>" to $PERF_TMP/service-fsync.
sample_service_fsync() {
  local port=$1 trace=$PERF_TMP/fsync.strace tracer created
  command -v strace >/dev/null || return 0
  strace -f -T -e trace=fsync,fdatasync -p "$SERVER_PID" -o "$trace" 2>/dev/null &
  tracer=$!
  perf_track "$tracer" 120
  sleep 0.5
  created=$("$LOADGEN" run --url "http://127.0.0.1:$port/serviceme" --scenario new-sns \
    --concurrency 16 --requests 2000 --seconds 3 --key "$PERF_TMP/keys/key.pem" \
    --cert-url "$(perf_cert_url)" --run-id fsync-sample | jq -r '.outcomes.created // 0')
  perf_stop "$tracer"
  grep -oE '<[0-9.]+>$' "$trace" | tr -d '<>' | sort -n |
    awk -v cases="$created" '{ t[NR] = $1; s += $1 }
      END { if (NR && cases) printf "%.2f %.3f %.3f %.3f\n", NR / cases,
        t[int((NR + 1) / 2)] * 1000, s / NR * 1000, t[int(NR * 0.9) + (NR < 10)] * 1000 }' \
    >"$PERF_TMP/service-fsync"
  echo "   service fsyncs (per case, p50 ms, mean ms, p90 ms): $(cat "$PERF_TMP/service-fsync")" >&2
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
  [[ $scenario == new-sns ]] && sample_service_fsync "$port"
  perf_stop "$SERVER_PID"
done

if grep -q '"level":"ERROR"' "$PERF_TMP/server.log" 2>/dev/null; then
  echo "== the service logged errors:" >&2
  grep '"level":"ERROR"' "$PERF_TMP/server.log" | head -n 5 >&2
fi

read -r DD2_MS SQLITE2_MS < <(measure_fsync)

# ---- the table ------------------------------------------------------------------------------

SERVICE_FSYNC=$(cat "$PERF_TMP/service-fsync" 2>/dev/null || true)
python3 - "$RESULTS" "$DD_MS / $DD2_MS" "$SQLITE_MS / $SQLITE2_MS" "$SECS" "$SERVICE_FSYNC" <<'EOF' | tee "$OUT/table.md"
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1])]
dd_ms, sqlite_ms, secs, service_fsync = sys.argv[2:6]
ceiling = {r["concurrency"]: r["rps"] for r in rows if r["target"] == "ceiling"}
healthz = {r["concurrency"]: r["rps"] for r in rows
           if r["target"] == "service" and r["scenario"] == "healthz"}

def mb(kb):
    return f"{kb / 1024:.1f}"

print(f"Each run: closed loop, one request in flight per connection, {secs} s or the request bound.")
print()
print("| scenario | conc. | req/s | p50 ms | p99 ms | vs /healthz | vs ceiling | server CPU µs/req | load | answers |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for r in rows:
    name = "bare axum (ceiling)" if r["target"] == "ceiling" else r["scenario"]
    c = r["concurrency"]
    ratio = r["rps"] / ceiling[c] if ceiling.get(c) else float("nan")
    own = f"{r['rps'] / healthz[c]:.0%}" if healthz.get(c) else "–"
    n = max(r["exchanges"], 1)
    cpu_us = r["server_cpu_s"] * 1e6 / n
    answers = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items(), key=lambda kv: -kv[1]))
    if r["target"] == "ceiling" or r["scenario"] == "healthz":
        answers = ", ".join(f"{k} {v}" for k, v in r["status"].items())
    if r["transport_errors"]:
        answers += f"; transport errors {r['transport_errors']}"
    print(f"| {name} | {c} | {r['rps']:.0f} | {r['latency_ms']['p50']:.2f} | "
          f"{r['latency_ms']['p99']:.2f} | {own} | {ratio:.0%} | {cpu_us:.0f} | {r['load1']:.1f} | {answers} |")

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
print(f"Disk, isolated loop (before / after the runs): 4 KiB write + fsync {dd_ms} ms; "
      f"one-row SQLite commit (WAL, synchronous=FULL) {sqlite_ms} ms.")
if service_fsync:
    per_case, p50, mean, p90 = service_fsync.split()
    print(f"The service's own fsyncs (strace -T, new-sns, 16 connections): {per_case} per new "
          f"case; p50 {p50} ms, mean {mean} ms, p90 {p90} ms.")
print("load: the machine's 1-minute load average just before the run (2 cores).")
EOF
echo "(reports: $RESULTS, table: $OUT/table.md)" >&2

if ((AWS)); then
  echo >&2
  echo "== the aws backend and the Flask + boto3 peer (scripts/bench-aws.sh)" >&2
  echo
  echo "AWS backend, against one canned AWS endpoint (nginx), new alarms and one redelivered:"
  echo
  scripts/bench-aws.sh --no-build --seconds "$SECS" --concurrency 64 --out "$OUT/aws"
fi
