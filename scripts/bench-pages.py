#!/usr/bin/env python3
"""Pages benchmark (issue 27), through the release binary on loopback.

1. Alarm received -> first message handed to its channel: N alarms, each routed to people
   (`route = page`), are posted at once (CONCURRENCY at a time); for each, the time from the
   moment its POST was sent to the moment the service marked its first message sent
   (`sent_at`). Both clocks are this machine's.
2. Escalation under load: the same N pages (N = 1000 by default) stay open; each one's
   second stage is due DELAY seconds after its first. For each page, how late the second
   stage was queued after its due time (`next_at` when the first stage ran).

Backends: `local` (the embedded default: SQLite, the local outbox) and `aws` (DynamoDB and
SNS for SMS in moto's server, scripts/moto-standin.py: a Python stand-in, so the figures
say what the service does against it, not against AWS).

    scripts/bench-pages.py [--backend local|aws] [--pages 1000] [--concurrency 16]
                           [--delay 30] [--bin target/release/cw-support-api] [--json OUT]
"""

import argparse
import concurrent.futures
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ON_CALL = """
[[person]]
id = "alice"
name = "Alice"
time_zone = "UTC"
sms = "+15555550100"

[[person]]
id = "bob"
name = "Bob"
time_zone = "UTC"
sms = "+15555550101"

[[schedule]]
id = "primary"
time_zone = "UTC"
[[schedule.rotation]]
people = ["alice"]
start = "2026-01-05T00:00"
shift = "1w"

[[policy]]
id = "bench"
answer_within = "10m"
[[policy.stage]]
after = "0m"
notify = ["schedule:primary"]
[[policy.stage]]
after = "{delay}s"
notify = ["person:bob"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def alarm(i):
    return json.dumps({
        "AlarmName": f"bench-{i}",
        "NewStateValue": "ALARM",
        "NewStateReason": "benchmark",
        "StateChangeTime": "2026-12-07T03:00:00.000+0000",
    }).encode()


def wait_http(url, deadline=30):
    end = time.time() + deadline
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"no answer from {url}")


def parse_time(s):
    # RFC 3339 with microseconds and Z (the service's form) or epoch micros (DynamoDB).
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Local:
    def __init__(self, args, env):
        self.data = env["DATA_DIR"]

    def messages(self):
        """page -> [(stage, queued_at, sent_at)] from the ledger (read only)."""
        db = sqlite3.connect(f"file:{self.data}/ledger.sqlite3?mode=ro", uri=True)
        out = {}
        for page, stage, queued, sent in db.execute(
            "SELECT page, stage, queued_at, sent_at FROM page_messages ORDER BY id"
        ):
            out.setdefault(page, []).append(
                (stage, parse_time(queued), sent and parse_time(sent))
            )
        due = {p: parse_time(n) for p, n in db.execute("SELECT id, next_at FROM pages") if n}
        db.close()
        return out, due


class Aws:
    """Pages read with the CLI (`pages show --json`), for a sample of pages."""

    def __init__(self, args, env):
        self.env, self.bin = env, args.bin

    def show(self, page):
        out = subprocess.run([self.bin, "pages", "show", str(page), "--json"], env=self.env,
                             capture_output=True, check=True, text=True).stdout
        return json.loads(out)

    def messages(self, sample):
        out, due = {}, {}
        for page in sample:
            p = self.show(page)
            out[page] = [(m["stage"] and m["stage"] - 1, parse_time(m["at"]),
                          m["sent_at"] and parse_time(m["sent_at"])) for m in p["messages"]]
            if p.get("next_at"):
                due[page] = parse_time(p["next_at"])
        return out, due


def start_moto(port):
    moto = subprocess.Popen([sys.executable, "scripts/moto-standin.py", str(port)], stderr=subprocess.DEVNULL,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert moto.stdout.readline().strip() == "ready"
    return moto


def setup(args, tmp):
    env = dict(os.environ, RUST_LOG="warn", DATA_DIR=os.path.join(tmp, "data"), STORM_CAP="1000000")
    moto = None
    if args.backend == "aws":
        port = free_port()
        moto = start_moto(port)
        env.update(BACKEND="aws", DBREGION="us-east-1", DBTABLE="bench-settings",
                   LEDGER_TABLE="bench-ledger", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
                   AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret",
                   AWS_EC2_METADATA_DISABLED="true", GRAPHS="local", TAGS="off", METRICS="off",
                   API_TOKENS="bench-token-0123456789abcdef")
        subprocess.run([args.bin, "tables", "create"], env=env, check=True, capture_output=True)
    path = os.path.join(tmp, "team.toml")
    with open(path, "w") as f:
        f.write(ON_CALL.replace("{delay}", str(args.delay)))
    subprocess.run([args.bin, "oncall", "import", path], env=env, check=True, capture_output=True)
    if args.backend == "local":
        os.makedirs(env["DATA_DIR"], exist_ok=True)
        settings = {f"bench-{i}": {"route": "page", "policy": "bench"} for i in range(args.pages)}
        with open(os.path.join(env["DATA_DIR"], "alarms.json"), "w") as f:
            json.dump(settings, f)
    else:
        import boto3  # installed with moto
        table = boto3.resource("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                               aws_access_key_id="AKIDTEST", aws_secret_access_key="secret").Table("bench-settings")
        with table.batch_writer() as batch:
            for i in range(args.pages):
                batch.put_item(Item={"AlarmName": f"bench-{i}", "route": "page", "policy": "bench"})
    return env, moto


def post_all(url, args, headers):
    def post(i):
        req = urllib.request.Request(url, data=alarm(i), headers=headers, method="POST")
        t0 = time.time()
        with urllib.request.urlopen(req, timeout=120) as r:
            body = json.loads(r.read())
        return i, t0, time.time(), body
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        return list(pool.map(post, range(args.pages)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["local", "aws"], default="local")
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--delay", type=int, default=30)
    ap.add_argument("--sample", type=int, default=100, help="pages read back on aws")
    ap.add_argument("--bin", default="target/release/cw-support-api")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, moto = setup(args, tmp)
        port = free_port()
        server = subprocess.Popen([args.bin, "serve", "--port", str(port), "--bind", "127.0.0.1"],
                                  env=env, stderr=open(os.path.join(tmp, "serve.log"), "w"))
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            headers = {"Authorization": "Bearer bench-token-0123456789abcdef"} if args.backend == "aws" else {}
            posted = post_all(f"http://127.0.0.1:{port}/serviceme", args, headers)
            outcomes = {}
            for _, _, _, body in posted:
                outcomes[body.get("outcome")] = outcomes.get(body.get("outcome"), 0) + 1
            reader = Local(args, env) if args.backend == "local" else Aws(args, env)
            pages = [int(b["reason"].split()[1]) for _, _, _, b in posted if b.get("outcome") == "paged"]
            sample = pages if args.backend == "local" else pages[: args.sample]
            # 1. first message handed over
            end = time.time() + 120
            while True:
                msgs, due = reader.messages() if args.backend == "local" else reader.messages(sample)
                firsts = {p: [m for m in msgs.get(p, []) if m[0] == 0 and m[2]] for p in sample}
                if all(firsts.values()) or time.time() > end:
                    break
                time.sleep(0.5)
            sent_at = {p: min(m[2] for m in ms) for p, ms in firsts.items() if ms}
            post_of = {int(b["reason"].split()[1]): t0 for _, t0, _, b in posted if b.get("outcome") == "paged"}
            first_ms = [1000 * (sent_at[p] - post_of[p]) for p in sent_at]
            due_of = dict(due)
            # 2. the second stage, under N open pages
            time.sleep(max(0, min(due_of.values(), default=time.time()) - time.time()) + 2)
            end = time.time() + args.delay + 120
            while True:
                msgs, _ = reader.messages() if args.backend == "local" else reader.messages(sample)
                seconds = {p: [m for m in msgs.get(p, []) if m[0] == 1] for p in sample}
                if all(seconds.values()) or time.time() > end:
                    break
                time.sleep(1)
            late_ms = [1000 * (min(m[1] for m in ms) - due_of[p]) for p, ms in seconds.items() if ms and p in due_of]
        except Exception:
            with open(os.path.join(tmp, "serve.log")) as f:
                sys.stderr.write("".join(f.readlines()[-20:]))
            raise
        finally:
            calls = None
            if moto:
                url = f"{env['AWS_ENDPOINT_URL']}/_standin/calls?table=bench-ledger"
                calls = json.loads(urllib.request.urlopen(url, timeout=10).read())
            server.terminate()
            server.wait(timeout=30)
            if moto:
                moto.stdin.close()
                try:
                    moto.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    moto.kill()
    report = {
        "backend": args.backend, "pages": args.pages, "concurrency": args.concurrency,
        "delay_s": args.delay, "outcomes": outcomes, "measured_pages": len(sample),
        "dynamodb_requests": calls,
        "first_message_ms": {"p50": round(pct(first_ms, 50), 1), "p99": round(pct(first_ms, 99), 1),
                             "max": round(max(first_ms), 1), "n": len(first_ms)} if first_ms else None,
        "second_stage_late_ms": {"p50": round(pct(late_ms, 50), 1), "p99": round(pct(late_ms, 99), 1),
                                 "max": round(max(late_ms), 1), "n": len(late_ms)} if late_ms else None,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
