#!/usr/bin/env bash
# Load test (issue 6): the `mix` scenario of examples/loadgen.rs (new alarms by the worker
# daemon and by SNS, duplicates of them, malformed bodies and forged SNS messages,
# interleaved) against the release binary, loopback only, bounded in requests and time.
#
#   scripts/load.sh [--backend local|aws] [--concurrency N] [--requests N] [--seconds S]
#                   [--faults N] [--no-build]
#
# local: the embedded backend in a temporary DATA_DIR. aws: DynamoDB on moto's server (PyPI
# `moto[server]`) and the project's AWS Support stand-in, tables made by `tables create`;
# --faults N makes the stand-in fail N CreateCase calls (default 10 on aws) so that 5xx
# answers and their retries happen.
#
# The sender behaves like sqsd: an answer 5xx (or a lost connection) is sent again until
# it is 200, for at most RETRY_FOR seconds (default 200: longer than CLAIM_TTL, the time a
# claim left by a failed commit blocks its alarm). Reports outcomes, p50/p99 latency and
# peak RSS, and fails (exit 1) when a valid alarm is lost (every distinct new alarm must
# end with exactly one case, checked in the ledger and at the support desk), when a case
# is duplicated, or when a valid request got a 5xx that never turned into a 200.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/perf-lib.sh disable=SC1091
source scripts/perf-lib.sh

MODE=local
CONC=32
REQUESTS=""
SECS=""
FAULTS=""
BUILD=1
RETRY_FOR=${RETRY_FOR:-200}

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

while (($#)); do
  case $1 in
    --backend) MODE=${2:?}; shift 2 ;;
    --concurrency) CONC=${2:?}; shift 2 ;;
    --requests) REQUESTS=${2:?}; shift 2 ;;
    --seconds) SECS=${2:?}; shift 2 ;;
    --faults) FAULTS=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ $MODE == local || $MODE == aws ]] || { echo "--backend is local or aws" >&2; exit 2; }
# moto answers a few dozen DynamoDB calls a second: fewer requests on aws.
if [[ -z $REQUESTS ]]; then
  if [[ $MODE == aws ]]; then REQUESTS=600; else REQUESTS=4000; fi
fi
if [[ -z $SECS ]]; then
  if [[ $MODE == aws ]]; then SECS=90; else SECS=30; fi
fi
if [[ -z $FAULTS ]]; then
  if [[ $MODE == aws ]]; then FAULTS=10; else FAULTS=0; fi
fi
if [[ $MODE == local && $FAULTS != 0 ]]; then
  echo "--faults needs --backend aws (the local dry-run desk has no fault injection)" >&2
  exit 2
fi

for tool in openssl python3 jq curl; do
  command -v "$tool" >/dev/null || { echo "load.sh needs $tool" >&2; exit 1; }
done
if [[ $MODE == aws ]] && ! python3 -c "import moto.server" 2>/dev/null; then
  echo "--backend aws needs moto's server: python3 -m pip install 'moto[server]'" >&2
  exit 1
fi

trap perf_cleanup EXIT
trap 'exit 130' INT TERM

if ((BUILD)); then
  echo "== cargo build --release --bins --examples" >&2
  cargo build --release --bins --examples >&2
fi
BIN=target/release/cw-support-api
LOADGEN=target/release/examples/loadgen
STANDIN=target/release/examples/support_standin
# Every process started here is killed after this long, whatever happens.
MAX_LIFE=$((SECS + RETRY_FOR + 900))

perf_tmpdir
perf_gen_keys "$PERF_TMP/keys"
TOPIC="arn:aws:sns:us-east-1:123456789012:support-cases"

# Environment of the service and of the commands that read its ledger.
SVC_ENV=(
  BIND=127.0.0.1
  SNS_CERT_DIR="$PERF_TMP/keys/certs"
  SNS_TOPIC_ARNS="$TOPIC"
  # Every distinct new alarm must get its own case here: no storm folding.
  STORM_CAP=1000000
  LOG_FORMAT=json
  RUST_LOG=warn
)

# Waits until $1 holds a line matching $2 (at most $3 seconds).
wait_for_line() {
  local file=$1 pattern=$2 tries=$(($3 * 10))
  while ((tries-- > 0)); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file:" >&2
  tail -n 20 "$file" >&2 || true
  return 1
}

STANDIN_URL=""
if [[ $MODE == local ]]; then
  SVC_ENV+=(BACKEND=local DATA_DIR="$PERF_TMP/data")
else
  moto_port=$(perf_free_port)
  echo "== moto (DynamoDB) on 127.0.0.1:$moto_port" >&2
  # The tests' stand-in: moto, one DynamoDB request at a time (as DynamoDB applies each
  # atomically). It stops when its standard input closes: after MAX_LIFE at the latest.
  python3 scripts/moto-standin.py "$moto_port" >"$PERF_TMP/moto.log" 2>&1 < <(sleep "$MAX_LIFE") &
  perf_track $! "$MAX_LIFE"
  wait_for_line "$PERF_TMP/moto.log" '^ready' 60

  standin_port=$(perf_free_port)
  echo "== AWS Support stand-in on 127.0.0.1:$standin_port" >&2
  "$STANDIN" --port "$standin_port" >"$PERF_TMP/standin.log" 2>&1 &
  perf_track $! "$MAX_LIFE"
  wait_for_line "$PERF_TMP/standin.log" '^listening' 30
  STANDIN_URL="http://127.0.0.1:$standin_port"

  SVC_ENV+=(
    BACKEND=aws
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$moto_port"
    AWS_ENDPOINT_URL_SUPPORT="$STANDIN_URL"
    AWS_ACCESS_KEY_ID=x
    AWS_SECRET_ACCESS_KEY=x
    AWS_EC2_METADATA_DISABLED=true
    # Any other service (CloudWatch has no stand-in here) goes to a closed loopback port,
    # never to AWS: no tags read, graphs drawn from the alarm, no metrics.
    AWS_ENDPOINT_URL=http://127.0.0.1:9
    TAGS=off
    GRAPHS=local
    METRICS=off
    DBTABLE=load-settings
    LEDGER_TABLE=load-ledger
  )
  echo "== tables create" >&2
  env "${SVC_ENV[@]}" "$BIN" tables create >&2
  if ((FAULTS > 0)); then
    echo "== the stand-in will fail $FAULTS CreateCase calls (InternalError)" >&2
    curl -fsS -X POST "$STANDIN_URL/_standin/faults" \
      -d "{\"operation\":\"CreateCase\",\"fault\":\"InternalError\",\"times\":$FAULTS}" >/dev/null
  fi
fi

port=$(perf_free_port)
echo "== cw-support-api ($MODE backend) on 127.0.0.1:$port" >&2
env "${SVC_ENV[@]}" PORT="$port" "$BIN" serve 2>"$PERF_TMP/service.log" &
SVC_PID=$!
perf_track "$SVC_PID" "$MAX_LIFE"
"$LOADGEN" wait-healthz --url "http://127.0.0.1:$port/healthz" --timeout 30 >/dev/null

echo "== mix: $REQUESTS requests at most, $CONC connections, $SECS s at most" >&2
"$LOADGEN" run --url "http://127.0.0.1:$port/serviceme" --scenario mix \
  --concurrency "$CONC" --requests "$REQUESTS" --seconds "$SECS" \
  --key "$PERF_TMP/keys/key.pem" --forged-key "$PERF_TMP/keys/forged.pem" \
  --cert-url "$(perf_cert_url)" --topic "$TOPIC" \
  --retries 1000 --retry-for "$RETRY_FOR" --retry-backoff-ms 200 \
  --alarms-out "$PERF_TMP/alarms.json" >"$PERF_TMP/report.json"
HWM_KB=$(perf_status_kb "$SVC_PID" VmHWM)
RSS_KB=$(perf_status_kb "$SVC_PID" VmRSS)

# What was recorded: the ledger's decisions, and the cases the support desk holds.
env "${SVC_ENV[@]}" "$BIN" cases list --json --limit 0 >"$PERF_TMP/decisions.json"
if [[ $MODE == aws ]]; then
  curl -fsS "$STANDIN_URL/_standin/cases" >"$PERF_TMP/desk.json"
  curl -fsS "$STANDIN_URL/_standin/calls" >"$PERF_TMP/calls.json"
else
  # The dry-run desk's own table (read only), the local backend's "support desk".
  python3 - "$PERF_TMP/data/ledger.sqlite3" >"$PERF_TMP/desk.json" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
rows = db.execute("SELECT n, record FROM dry_run_cases ORDER BY n").fetchall()
print(json.dumps([{"caseId": f"dry-run-{n}", "subject": json.loads(r)["subject"]} for n, r in rows]))
EOF
  echo '{}' >"$PERF_TMP/calls.json"
fi
perf_stop "$SVC_PID"

python3 - "$PERF_TMP" "$MODE" "$HWM_KB" "$RSS_KB" "$FAULTS" <<'EOF'
import collections, json, sys

tmp, mode, hwm_kb, rss_kb, faults = sys.argv[1:6]
report = json.load(open(f"{tmp}/report.json"))
alarms = json.load(open(f"{tmp}/alarms.json"))
decisions = json.load(open(f"{tmp}/decisions.json"))
desk = json.load(open(f"{tmp}/desk.json"))
calls = json.load(open(f"{tmp}/calls.json"))

failures = []
checks = report["checks"]
if checks["alarms_unresolved"]:
    failures.append(f"{checks['alarms_unresolved']} valid request(s) never got a 200 "
                    f"(a 5xx or lost connection that no retry turned into a 200)")
if checks["wrong_status"]:
    failures.append(f"{checks['wrong_status']} malformed or forged request(s) not refused "
                    "with 400/403")
if checks["alarms_with_several_case_ids"]:
    failures.append(f"{checks['alarms_with_several_case_ids']} alarm(s) answered with "
                    "several case ids")

# The ledger: exactly one case-opening decision per alarm, all answers naming that case.
opened = collections.defaultdict(list)
case_of = collections.defaultdict(set)
for d in decisions:
    if d["outcome"] in ("created", "folded"):
        opened[d["alarmName"]].append(d["caseId"])
    if d.get("caseId"):
        case_of[d["alarmName"]].add(d["caseId"])
# The desk: cases by subject (the alarm name, as no alarm has a subject setting).
at_desk = collections.Counter(c["subject"] for c in desk)

lost, doubled, mismatched, desk_missing, desk_doubled = [], [], [], [], []
for name, seen in alarms.items():
    n = len(opened.get(name, []))
    if n == 0:
        lost.append(name)
    elif n > 1:
        doubled.append(name)
    if len(case_of.get(name, set())) > 1:
        doubled.append(name)
    if seen["caseIds"] and set(seen["caseIds"]) != case_of.get(name, set()):
        mismatched.append(name)
    if at_desk[name] == 0:
        desk_missing.append(name)
    elif at_desk[name] > 1:
        desk_doubled.append(name)
forged = [d for d in decisions if d["alarmName"].startswith("mix-forged")]
orphans = [s for s in at_desk if s not in alarms]

for what, names in [
    ("alarm(s) with no case in the ledger (lost)", lost),
    ("alarm(s) with two cases in the ledger (duplicated)", sorted(set(doubled))),
    ("alarm(s) whose answers named another case than the ledger", mismatched),
    ("alarm(s) with no case at the support desk (lost)", desk_missing),
    ("alarm(s) with two cases at the support desk (duplicated)", desk_doubled),
    ("case(s) at the support desk for no alarm that was sent", orphans),
]:
    if names:
        failures.append(f"{len(names)} {what}: {', '.join(names[:5])}")
if forged:
    failures.append(f"{len(forged)} decision(s) recorded for forged SNS messages")

lat = report["latency_ms"]
print(f"backend {mode}: {report['requests']} requests ({report['exchanges']} exchanges with "
      f"{report['retries']} retries) over {report['concurrency']} connections in "
      f"{report['seconds']} s: {report['rps']} exchanges/s")
print(f"  latency p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms")
print(f"  sent: {json.dumps(report['classes'])}")
print(f"  status: {json.dumps(report['status'])}")
print(f"  answers: {json.dumps(report['outcomes'])}")
if report["transport_errors"]:
    print(f"  transport errors (retried): {report['transport_errors']}")
print(f"  service RSS {int(rss_kb) / 1024:.1f} MB after the run, peak (VmHWM) {int(hwm_kb) / 1024:.1f} MB")
if mode == "aws":
    print(f"  stand-in calls: {json.dumps(calls)}; CreateCase faults injected: {faults}")
print(f"  distinct new alarms sent: {len(alarms)}; cases in the ledger: "
      f"{sum(len(v) for v in opened.values())}; cases at the support desk: {len(desk)}; "
      f"decisions recorded: {len(decisions)}")
if report["problems"]:
    print(f"  first problems seen by the sender: {report['problems'][:3]}")
if failures:
    print("FAIL:")
    for f in failures:
        print(f"  - {f}")
    sys.exit(1)
print("PASS: every distinct new alarm has exactly one case (ledger and desk), no case is "
      "duplicated, every 5xx turned into a 200 on retry, every bad or forged request was refused")
EOF
