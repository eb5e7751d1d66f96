#!/usr/bin/env bash
# Builds the fuzzing corpus in fuzz/corpus/<target>/ (git-ignored) from:
#   - fuzz/seeds/<target>/*           seeds written for fuzzing (committed)
#   - tests/data/payloads/*.json      the repository's example payloads
#   - ../shared/fixtures/payloads/*.json and ../shared/fixtures/sns-aws-signed/messages/*.json
#     when present (copied at run time only: never commit them)
# Inputs already in the corpus (found by earlier runs) are kept.
#
# The payload target reads its first byte as the choice of headers, so each body is added
# once per header set (0 none, 1 worker daemon, 2 SNS Notification, 3 SNS raw delivery).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${SHARED_FIXTURES_DIR:-$root/../shared/fixtures}"
corpus="$root/fuzz/corpus"

# add TARGET FILE [PREFIX_BYTE_OCTAL]: copies FILE into the target's corpus.
add() {
    local target="$1" file="$2" prefix="${3:-}" name
    name="$(basename "$file")"
    mkdir -p "$corpus/$target"
    if [[ -n "$prefix" ]]; then
        # shellcheck disable=SC2059 # the format is a fixed octal escape
        { printf "\\$prefix"; cat "$file"; } >"$corpus/$target/h$prefix-$name"
    else
        cp "$file" "$corpus/$target/$name"
    fi
}

shopt -s nullglob
payloads=("$root"/tests/data/payloads/*.json)
shared_payloads=()
shared_sns=()
if [[ -d "$shared" ]]; then
    shared_payloads=("$shared"/payloads/*.json)
    shared_sns=("$shared"/sns-aws-signed/messages/*.json)
fi

for f in "$root"/fuzz/seeds/payload/* "$root"/fuzz/seeds/alarm_json/* "${payloads[@]}" "${shared_payloads[@]}" \
    "${shared_sns[@]}" "$root"/fuzz/seeds/sns_verify/*; do
    for prefix in 000 001 002 003; do
        add payload "$f" "$prefix"
    done
done
for f in "$root"/fuzz/seeds/alarm_json/* "$root"/fuzz/seeds/payload/* "${payloads[@]}" "${shared_payloads[@]}"; do
    add alarm_json "$f"
done
for f in "$root"/fuzz/seeds/sns_verify/* "${shared_sns[@]}" "${payloads[@]}" "${shared_payloads[@]}"; do
    add sns_verify "$f"
done

for t in payload alarm_json sns_verify; do
    n=$(find "$corpus/$t" -type f | wc -l)
    echo "corpus $t: $n inputs"
done
