"""Fills a local ledger with past decisions, for benchmarks at a realistic size.

    python3 scripts/seed-ledger.py DATA_DIR N

The ledger must exist (run `cw-support-api check` with DATA_DIR first, which creates it).
Writes N decisions of 1,000 alarms (created, then duplicates and updates), each with its
handled keys, all within the last hour (the worst case for anything that reads the hour),
in one transaction. Used by `scripts/bench.sh --ledger N`.
"""

import datetime
import sqlite3
import sys


def main() -> None:
    data_dir, n = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(f"{data_dir}/ledger.sqlite3")
    now = datetime.datetime.now(datetime.timezone.utc)
    outcomes = ["created", "duplicate", "duplicate", "updated", "coalesced"]

    def rows():
        for i in range(n):
            at = (now - datetime.timedelta(milliseconds=(n - i))).isoformat()
            alarm = f"seeded-{i % 1000}"
            yield (
                at,
                "sqsd",
                f"seed-msg-{i}",
                f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}",
                alarm,
                "ALARM",
                at,
                outcomes[i % len(outcomes)],
                f"dry-run-seed-{i % 1000}",
                None,
            )

    with db:
        db.executemany(
            "INSERT INTO decisions (at, delivery_kind, delivery_id, alarm_key, alarm_name, "
            "state, state_change_time, outcome, case_id, note) VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows(),
        )
        db.execute(
            "INSERT OR IGNORE INTO handled (key, seq) SELECT 'sqs:' || delivery_id, seq "
            "FROM decisions WHERE delivery_id LIKE 'seed-msg-%'"
        )
    count = db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    print(f"{count} decisions in {data_dir}/ledger.sqlite3", file=sys.stderr)


if __name__ == "__main__":
    main()
