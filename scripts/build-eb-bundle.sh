#!/usr/bin/env bash
# Builds the Elastic Beanstalk source bundle dist/cw-support-api-eb.zip for a Procfile
# platform (e.g. "Go running on 64bit Amazon Linux 2023", or plain "Amazon Linux 2023"):
# the release binary at the root (executable), Procfile, cron.yaml, .ebextensions/ and
# .platform/. There is no Rust platform: the platform only runs the prebuilt binary.
#
#   scripts/build-eb-bundle.sh                  # x86_64-unknown-linux-gnu (t3, m6i, ...)
#   TARGET=aarch64-unknown-linux-gnu scripts/build-eb-bundle.sh     # Graviton (t4g, m7g, ...)
#   TARGET=x86_64-unknown-linux-musl scripts/build-eb-bundle.sh     # fully static binary
#
# Other targets need, on a Debian/Ubuntu build machine:
#   rustup target add "$TARGET"
#   musl:    apt-get install musl-tools                 (musl-gcc builds SQLite and aws-lc)
#   aarch64: apt-get install gcc-aarch64-linux-gnu and
#            export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
#            export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
#
# glibc: Amazon Linux 2023 has glibc 2.34. A *-linux-gnu binary built on a newer system
# (Debian 12 has 2.36) may ask for newer symbol versions and then fail to start there; the
# script checks and stops. Build on Amazon Linux 2023 (or an older distribution), or use musl.
#
# Environment: TARGET (above), OUT (default dist/cw-support-api-eb.zip), CARGO_TARGET_DIR
# (honoured), MAX_GLIBC (default 2.34; empty to skip the check), SKIP_BUILD=1 to package an
# already built binary.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=cw-support-api
TARGET="${TARGET:-x86_64-unknown-linux-gnu}"
OUT="${OUT:-dist/cw-support-api-eb.zip}"
MAX_GLIBC="${MAX_GLIBC-2.34}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

die() {
  echo "build-eb-bundle: $*" >&2
  exit 1
}

for f in Procfile cron.yaml .ebextensions .platform; do
  [[ -e $f ]] || die "$f is missing"
done
command -v python3 >/dev/null || die "python3 is needed to write the zip"

if [[ ${SKIP_BUILD:-} != 1 ]]; then
  echo "== cargo build --release --locked --target $TARGET"
  cargo build --release --locked --target "$TARGET"
fi

binary="$TARGET_DIR/$TARGET/release/$BIN"
[[ -x $binary ]] || die "$binary not found or not executable (set CARGO_TARGET_DIR if it is elsewhere)"

if [[ $TARGET == *-linux-gnu && -n $MAX_GLIBC ]]; then
  # The highest GLIBC_x.y symbol version the binary asks for.
  needed=$(grep -aoE 'GLIBC_[0-9]+\.[0-9]+' "$binary" | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
  if [[ -n $needed ]]; then
    highest=$(printf '%s\n%s\n' "$needed" "$MAX_GLIBC" | sort -V | tail -n 1)
    if [[ $highest != "$MAX_GLIBC" ]]; then
      die "$binary needs glibc $needed but the platform has $MAX_GLIBC: build on Amazon Linux 2023, use TARGET=x86_64-unknown-linux-musl, or set MAX_GLIBC= to skip this check"
    fi
    echo "== glibc: needs $needed, platform has $MAX_GLIBC"
  fi
fi

mkdir -p "$(dirname "$OUT")"
echo "== writing $OUT"
# Python's zipfile does not record Unix permissions unless told: set them explicitly so the
# binary stays executable when Elastic Beanstalk unpacks the bundle.
python3 - "$OUT" "$binary" "$BIN" <<'PY'
import os
import sys
import zipfile
from pathlib import Path

out, binary, name = sys.argv[1:4]


def add(zf, src, arcname, mode):
    info = zipfile.ZipInfo.from_file(src, arcname)
    info.create_system = 3  # Unix: unzip and Elastic Beanstalk honour the mode bits
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(src, "rb") as f:
        zf.writestr(info, f.read())


tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w") as zf:
    add(zf, binary, name, 0o755)
    for f in ("Procfile", "cron.yaml"):
        add(zf, f, f, 0o644)
    for top in (".ebextensions", ".platform"):
        for path in sorted(Path(top).rglob("*")):
            if path.is_file():
                # Platform hooks must stay executable too.
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                add(zf, str(path), path.as_posix(), mode)
os.replace(tmp, out)

with zipfile.ZipFile(out) as zf:
    for info in zf.infolist():
        print(f"   {(info.external_attr >> 16) & 0o777:o} {info.file_size:>10} {info.filename}")
PY
echo "== done: $OUT ($(du -h "$OUT" | cut -f1))"
