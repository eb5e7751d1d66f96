#!/usr/bin/env bash
# The AWS backend side by side with the original service's work in Flask + boto3 (issue 16),
# both against the same canned AWS endpoint: Debian's nginx answering every DynamoDB, AWS
# Support and CloudWatch call at once with a fixed answer, and counting the calls. No real AWS
# is ever called (fixed credentials, AWS_ENDPOINT_URL on loopback).
#
# The service runs in two configurations, each figure labelled with its own:
# - defaults: only what a deployment must set (BACKEND=aws, the endpoint, the topic); every
#   default on: GRAPHS=auto (CloudWatch draws each new case's graph, attached with
#   AddAttachmentsToSet), TAGS=on (ListTagsForResource per new alarm), METRICS=on (batched);
# - lean: METRICS=off GRAPHS=off TAGS=off, the three calls a new alarm cannot do without.
# New alarms (a new alarm name per request, as worker-daemon deliveries) go to each, and to the
# peer (scripts/peer/flask_worker.py under gunicorn, 4 workers x 8 threads), in --rounds
# alternating triples (defaults, lean, peer), so that each ratio is taken from runs a few
# seconds apart on a shared machine whose speed drifts; then one alarm redelivered goes to the
# service with the defaults. Prints a markdown table: events/s, p50/p99, server CPU us per
# request, the AWS calls per outcome, each round's ratio to the peer and their medians.
#
#   scripts/bench-aws.sh [--seconds S] [--concurrency C] [--rounds N] [--out DIR] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/perf-lib.sh disable=SC1091
source scripts/perf-lib.sh

SECS=5
CONC=64
ROUNDS=3
OUT=target/bench-aws
BUILD=1
REQUESTS=${REQUESTS:-200000}

while (($#)); do
  case $1 in
    --seconds) SECS=${2:?}; shift 2 ;;
    --concurrency) CONC=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "bench-aws.sh needs nginx (apt-get install nginx-light)" >&2; exit 1; }
for tool in python3 jq; do
  command -v "$tool" >/dev/null || { echo "bench-aws.sh needs $tool" >&2; exit 1; }
done
if ! python3 -c "import flask, boto3, gunicorn" >/dev/null 2>&1; then
  echo "== installing flask boto3 gunicorn (pip)" >&2
  python3 -m pip install --quiet flask boto3 gunicorn >&2
fi
if ((BUILD)); then
  echo "== cargo build --release --bins --examples" >&2
  cargo build --release --bins --examples >&2
fi
BIN=target/release/cw-support-api
LOADGEN=target/release/examples/loadgen

trap perf_cleanup EXIT
trap 'exit 130' INT TERM
perf_tmpdir
mkdir -p "$OUT"
CLK_TCK=$(getconf CLK_TCK)

# ---- the canned AWS endpoint ----------------------------------------------------------------

AWS_PORT=$(perf_free_port)
CALLS="$PERF_TMP/calls.log"
mkdir -p "$PERF_TMP/nginx"
cat >"$PERF_TMP/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $PERF_TMP/nginx/nginx.pid;
error_log $PERF_TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path $PERF_TMP/nginx;
  proxy_temp_path $PERF_TMP/nginx;
  fastcgi_temp_path $PERF_TMP/nginx;
  uwsgi_temp_path $PERF_TMP/nginx;
  scgi_temp_path $PERF_TMP/nginx;
  client_max_body_size 16m;
  keepalive_requests 1000000;
  # JSON protocols name the call in X-Amz-Target; CloudWatch (Smithy RPC v2 CBOR) in the path.
  map \$uri \$cw_call {
    default '';
    ~^/service/GraniteServiceVersion20100801/operation/(?<op>[A-Za-z]+)\$ CloudWatch_20100801.\$op;
  }
  map \$http_x_amz_target \$aws_call {
    '' \$cw_call;
    default \$http_x_amz_target;
  }
  log_format calls '\$aws_call';
  map \$http_x_amz_target \$canned {
    default '{}';
    DynamoDB_20120810.DescribeTable '{"Table":{"TableName":"t","TableStatus":"ACTIVE","KeySchema":[{"AttributeName":"name","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"name","AttributeType":"S"}]}}';
    DynamoDB_20120810.Query '{"Items":[],"Count":0,"ScannedCount":0}';
    DynamoDB_20120810.Scan '{"Items":[],"Count":0,"ScannedCount":0}';
    DynamoDB_20120810.BatchGetItem '{"Responses":{},"UnprocessedKeys":{}}';
    AWSSupport_20130415.DescribeSeverityLevels '{"severityLevels":[{"code":"low","name":"Low"},{"code":"normal","name":"Normal"},{"code":"high","name":"High"},{"code":"urgent","name":"Urgent"},{"code":"critical","name":"Critical"}]}';
    AWSSupport_20130415.DescribeServices '{"services":[{"code":"amazon-elastic-compute-cloud-linux","name":"EC2 (Linux)","categories":[{"code":"other","name":"Other"}]}]}';
    AWSSupport_20130415.CreateCase '{"caseId":"case-123456789012-muen-2026-0123456789abcdef"}';
    AWSSupport_20130415.AddAttachmentsToSet '{"attachmentSetId":"as-0123456789abcdef","expiryTime":"2026-12-06T20:00:00Z"}';
    AWSSupport_20130415.DescribeCases '{"cases":[]}';
    AWSSupport_20130415.AddCommunicationToCase '{"result":true}';
  }
  server {
    listen 127.0.0.1:$AWS_PORT;
    access_log $CALLS calls buffer=64k flush=100ms;
    location / {
      default_type application/x-amz-json-1.0;
      return 200 \$canned;
    }
    # CloudWatch's answers are CBOR files (see below). nginx serves a file only to GET: a POST
    # gets 405, which error_page turns into a GET of the same file, answered 200.
    location /service/GraniteServiceVersion20100801/operation/ {
      root $PERF_TMP/cbor;
      default_type application/cbor;
      add_header smithy-protocol rpc-v2-cbor always;
      error_page 405 =200 \$uri;
    }
  }
}
CONF
# The CBOR answers: GetMetricWidgetImage a small PNG, ListTagsForResource no tags, the rest
# an empty map (PutMetricData has no output).
python3 - "$PERF_TMP/cbor/service/GraniteServiceVersion20100801/operation" <<'PY'
import base64
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True)
# A 1x1 PNG.
png = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def text(s):
    b = s.encode()
    assert len(b) < 24
    return bytes([0x60 | len(b)]) + b


widget = b"\xa1" + text("MetricWidgetImage") + bytes([0x58, len(png)]) + png
answers = {
    "GetMetricWidgetImage": widget,
    "ListTagsForResource": b"\xa1" + text("Tags") + b"\x80",
    "PutMetricData": b"\xa0",
    "DescribeAlarms": b"\xa2" + text("MetricAlarms") + b"\x80" + text("CompositeAlarms") + b"\x80",
}
for name, body in answers.items():
    (out / name).write_bytes(body)
PY
# nginx's workers (nobody, when started as root) read these files.
chmod a+x "$PERF_TMP"
chmod -R a+rX "$PERF_TMP/cbor"
"$NGINX" -p "$PERF_TMP/nginx" -c "$PERF_TMP/nginx/nginx.conf" -g 'daemon off;' &
perf_track "$!" 3600
for _ in $(seq 50); do
  curl -fsS -o /dev/null "http://127.0.0.1:$AWS_PORT/" 2>/dev/null && break
  sleep 0.1
done
echo "== canned AWS endpoint (nginx) on 127.0.0.1:$AWS_PORT" >&2

export AWS_ENDPOINT_URL="http://127.0.0.1:$AWS_PORT" AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true

# Lines logged so far (nginx flushes every 100 ms).
calls_so_far() {
  sleep 0.3
  wc -l <"$CALLS" 2>/dev/null || echo 0
}

# The calls logged after line $1, per X-Amz-Target, as a JSON object.
calls_since() {
  tail -n +"$(($1 + 1))" "$CALLS" | sort | uniq -c |
    awk '{ printf "%s\"%s\": %d", (NR > 1 ? ", " : "{"), $2, $1 } END { print (NR ? "}" : "{}") }'
}

# ---- one measured run -------------------------------------------------------------------------

# CPU ticks of a process and its children (the peer is a gunicorn master and its workers).
tree_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1"); do
    total=$((total + $(perf_cpu_ticks "$p")))
  done
  echo "$total"
}

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

# run <label> <port> <pid> <scenario> [round]: CPU counted for the process and its children.
run() {
  local label=$1 port=$2 pid=$3 scenario=$4 round=${5:-1} before after mark report
  mark=$(calls_so_far)
  before=$(tree_ticks "$pid")
  report=$("$LOADGEN" run --url "http://127.0.0.1:$port/serviceme" --scenario "$scenario" \
    --concurrency "$CONC" --requests "$REQUESTS" --seconds "$SECS" \
    --run-id "$label-$scenario-$round")
  after=$(tree_ticks "$pid")
  jq -c --arg who "$label" --argjson cpu "$((after - before))" --argjson tck "$CLK_TCK" \
    --argjson calls "$(calls_since "$mark")" \
    --argjson rss "$(perf_status_kb "$pid" VmHWM)" \
    --argjson round "$round" \
    '. + {"who": $who, "round": $round, "cpu_s": ($cpu / $tck), "calls": $calls, "hwm_kb": $rss}' \
    <<<"$report" | tee -a "$RESULTS" >/dev/null
  echo "   $label $scenario c=$CONC: $(jq -r '.rps' <<<"$report") req/s, $(jq -c '.outcomes' <<<"$report")" >&2
}


# ---- the service on the aws backend (two configurations), and the Flask + boto3 peer ---------

# start_service LABEL [VAR=VALUE...]: the service with only what a deployment must set, plus
# the given settings; its pid in SERVICE_PID[LABEL], its port in SERVICE_PORT[LABEL].
declare -A SERVICE_PID SERVICE_PORT
start_service() {
  local label=$1 port
  shift
  port=$(perf_free_port)
  env BIND=127.0.0.1 PORT="$port" BACKEND=aws \
    SNS_TOPIC_ARNS="arn:aws:sns:us-east-1:123456789012:support-cases" STORM_CAP=100000000 \
    LOG_FORMAT=json RUST_LOG=warn "$@" "$BIN" serve 2>>"$PERF_TMP/service-$label.log" &
  SERVICE_PID[$label]=$!
  SERVICE_PORT[$label]=$port
  perf_track "$!" 3600
  "$LOADGEN" wait-healthz --url "http://127.0.0.1:$port/healthz" --since "$EPOCHREALTIME" >/dev/null
  echo "== service ($label: ${*:-every default}) on 127.0.0.1:$port" >&2
}
start_service defaults
start_service lean METRICS=off GRAPHS=off TAGS=off

PEER_PORT=$(perf_free_port)
(cd scripts/peer && exec python3 -m gunicorn --workers 4 --threads 8 --worker-class gthread \
  --bind "127.0.0.1:$PEER_PORT" --log-level warning flask_worker:app) 2>>"$PERF_TMP/peer.log" &
PEER=$!
perf_track "$PEER" 3600
"$LOADGEN" wait-healthz --url "http://127.0.0.1:$PEER_PORT/healthz" --since "$EPOCHREALTIME" >/dev/null
echo "== Flask + boto3 peer (gunicorn 4 x 8) on 127.0.0.1:$PEER_PORT" >&2

# Alternating, so that each round's runs see the machine at about the same speed (the idle
# sides cost nothing meanwhile).
for round in $(seq "$ROUNDS"); do
  for label in defaults lean; do
    run "$label" "${SERVICE_PORT[$label]}" "${SERVICE_PID[$label]}" new-sqsd "$round"
  done
  run peer "$PEER_PORT" "$PEER" new-sqsd "$round"
done
run defaults "${SERVICE_PORT[defaults]}" "${SERVICE_PID[defaults]}" dup-sqsd
perf_stop "$PEER"
for label in defaults lean; do
  perf_stop "${SERVICE_PID[$label]}"
done
# What the services logged (warnings and errors only: RUST_LOG=warn), kept with the results.
cp "$PERF_TMP"/service-*.log "$OUT/"

# ---- the table --------------------------------------------------------------------------------

jq -rs '
  def per(n): if n > 0 then . / n else 0 end;
  def median: sort | .[(length - 1) / 2 | floor];
  def x: (. * 10 | round) / 10 | tostring + "×";
  (map(select(.who == "peer" and .scenario == "new-sqsd")) | map({key: (.round | tostring), value: .rps}) | from_entries) as $peer
  | (reduce (.[] | select(.who != "peer" and .scenario == "new-sqsd")) as $r ({}; .[$r.who] += [$r.rps / $peer[$r.round | tostring]])) as $ratios
  | "| configuration | round | scenario | events/s | p50 ms | p99 ms | vs peer | CPU µs/event | peak RSS | AWS calls per event | answers |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    (.[] | (.exchanges) as $n
      | "| \(.who) | \(.round) | \(.scenario) | \(.rps) | \(.latency_ms.p50) | \(.latency_ms.p99) | \(if .scenario == "new-sqsd" then (.rps / $peer[.round | tostring] | x) else "" end) | \((.cpu_s * 1e6 | per($n)) | round) | \((.hwm_kb / 1024 * 10 | round) / 10) MB | \(.calls | to_entries | map("\(.key | sub("^[A-Za-z]+_[0-9]+\\."; "")) \((.value / $n * 100 | round) / 100)") | join(", ")) | \(.outcomes | to_entries | map("\(.key) \(.value)") | join(", ")) |"),
    "",
    ($ratios | to_entries[] | "New alarms, service (\(.key)) vs peer, median of \(.value | length) alternating rounds: \(.value | median | x) (each round: \(.value | map(x) | join(", ")))."),
    "",
    "defaults: BACKEND=aws and the endpoint only (GRAPHS=auto: CloudWatch graphs attached, TAGS=on, METRICS=on); lean: METRICS=off GRAPHS=off TAGS=off; peer: scripts/peer/flask_worker.py (GetItem, DescribeCases, CreateCase per alarm; the original service also called PutMetricData, which the peer leaves out)."
' "$RESULTS" | tee "$OUT/table.md"
