#!/usr/bin/env bash
# The README's test command: installs what the tests run against when it is missing (Python's
# moto server, the AWS stand-in; Python's icalendar), then runs `cargo test` with any
# arguments given. The tests themselves install nothing (issue 25): a missing moto fails them
# with this hint.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import moto.server, flask, flask_cors" >/dev/null 2>&1; then
  echo "== installing moto[server] (the tests' AWS stand-in)"
  python3 -m pip install --quiet 'moto[server]' \
    || python3 -m pip install --quiet --break-system-packages 'moto[server]'
fi

# The on-duty calendar export is read back by a standard iCalendar library (tests/it/oncall.rs).
if ! python3 -c "import icalendar" >/dev/null 2>&1; then
  echo "== installing icalendar (reads the calendar export back in the tests)"
  python3 -m pip install --quiet icalendar \
    || python3 -m pip install --quiet --break-system-packages icalendar
fi

exec cargo test "$@"
