#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; all targets)
#
# Installs cargo-fuzz if it is missing, builds the seed corpus (scripts/fuzz-corpus.sh), runs
# each target with -max_total_time and -rss_limit_mb=2048, and exits non-zero if any target
# found a crash, printing where its artifact is. Reproduce one with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/crash-...
# then add it to tests/it/fuzz_regressions.rs.
#
# The toolchain is stable: cargo-fuzz's nightly flags (-Zsanitizer=address, ...) are enabled
# with RUSTC_BOOTSTRAP=1. FUZZ_SANITIZER=none builds without AddressSanitizer (faster;
# Rust code is memory-safe, so this loses little) if the sanitizer build ever fails.
set -euo pipefail

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

"$root/scripts/fuzz-corpus.sh"

cd "$fuzz"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

for t in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$sanitizer" "$t"
done

failed=()
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t" "corpus/$t"
    echo "=== fuzzing $t for ${seconds}s"
    dict=()
    if [[ -f "dicts/$t.dict" ]]; then
        dict=("-dict=dicts/$t.dict")
    fi
    marker="$(mktemp)"
    status=0
    cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 \
        -print_final_stats=1 "${dict[@]}" || status=$?
    found=()
    while IFS= read -r -d '' f; do
        found+=("$f")
    done < <(find "artifacts/$t" -type f -newer "$marker" -print0)
    rm -f "$marker"
    if [[ $status -ne 0 || ${#found[@]} -gt 0 ]]; then
        failed+=("$t")
        echo "!!! $t failed (exit $status)" >&2
        for f in "${found[@]}"; do
            echo "!!! artifact: $fuzz/$f" >&2
        done
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: no crash in ${targets[*]} (${seconds}s each)"
