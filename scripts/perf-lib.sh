# shellcheck shell=bash
# Shared by scripts/bench.sh and scripts/load.sh (sourced, not run): a scratch directory,
# SNS signing keys, free loopback ports, background processes that are always cleaned up
# and never outlive their bound, and readings from /proc.

PERF_PIDS=()
PERF_TMP=""

# The pinned certificate's file name; SigningCertURL must end with it.
perf_cert_name() {
  echo "SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
}

perf_cert_url() {
  echo "https://sns.us-east-1.amazonaws.com/$(perf_cert_name)"
}

# A scratch directory on disk (not tmpfs: the ledger's fsyncs must be real), removed on exit.
perf_tmpdir() {
  PERF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cw-perf.XXXXXX")
}

# Kills what was started (newest first, by pid), then removes the scratch directory.
perf_cleanup() {
  local i pid
  for ((i = ${#PERF_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PERF_PIDS[i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${PERF_PIDS[@]}"; do
    perf_wait_gone "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
  done
  PERF_PIDS=()
  if [[ -n $PERF_TMP && -d $PERF_TMP && ${KEEP_TMP:-0} != 1 ]]; then
    rm -rf "$PERF_TMP"
  fi
}

# Remembers a background process for perf_cleanup, and kills it anyway after $2 seconds.
perf_track() {
  local pid=$1 limit=${2:-3600}
  PERF_PIDS+=("$pid")
  (
    # On TERM (perf_cleanup), take the sleep down too rather than leave it behind.
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    sleep "$limit" &
    nap=$!
    wait "$nap"
    kill -TERM "$pid" 2>/dev/null || true
  ) >/dev/null 2>&1 &
  PERF_PIDS+=("$!")
}

# Waits until a process is gone, polling every 0.1 s, at most $2 times.
perf_wait_gone() {
  local pid=$1 tries=${2:-100}
  while ((tries-- > 0)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

# SIGTERM, then SIGKILL after 10 s.
perf_stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  perf_wait_gone "$pid" 100 || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A key and its certificate (CN sns.amazonaws.com, valid from now for 30 days) pinned in
# $1/certs under the certificate URL's file name, and an unrelated key for forged messages.
perf_gen_keys() {
  local dir=$1
  mkdir -p "$dir/certs"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/key.pem" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/forged.pem" 2>/dev/null
  openssl req -x509 -new -key "$dir/key.pem" -subj "/CN=sns.amazonaws.com" -days 30 \
    -sha256 -out "$dir/certs/$(perf_cert_name)" 2>/dev/null
}

# A TCP port free on 127.0.0.1 right now.
perf_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A field of /proc/PID/status in kB (VmRSS, VmHWM).
perf_status_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# User + system CPU time of a process, in clock ticks.
perf_cpu_ticks() {
  # Fields after the command name, which is in parentheses and may hold spaces.
  sed -e 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
