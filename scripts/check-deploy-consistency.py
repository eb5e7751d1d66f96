#!/usr/bin/env python3
"""Checks that the deployment files agree with each other and with the binary.

The service's path, port and request timeout are declared in the Rust code (src/inbound/http/mod.rs,
src/cli/config.rs) and repeated in the Procfile, .ebextensions, the nginx extension, the Dockerfile
and cron.yaml. A mismatch does not fail any build; it shows up in production as retries,
duplicates or a dead-letter queue. This script reads every copy and fails on any mismatch.

Usage: check-deploy-consistency.py [REPO_ROOT]
Prints one line per check ("ok" or "FAIL") and exits 1 if any failed.
"""

import json
import re
import shlex
import sys
from pathlib import Path

import yaml

SQSD = "aws:elasticbeanstalk:sqsd"
ENV = "aws:elasticbeanstalk:application:environment"
# The largest SQS message: the nginx body limit must let it through.
SQS_MAX_MESSAGE = 256 * 1024
NGINX_TIMEOUTS = ("proxy_read_timeout", "proxy_send_timeout", "send_timeout")
# Where the service's options (flag, environment variable, default) are declared.
CLI_OPTIONS = "src/cli/config.rs"


class Failure(Exception):
    pass


def read(root, rel):
    path = root / rel
    if not path.is_file():
        raise Failure(f"{rel} is missing")
    return path.read_text()


def duration_secs(text, what):
    """The service's durations: 90, 90s, 10m, 2h, 1d (src/cli/mod.rs parse_duration)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(text))
    if not m:
        raise Failure(f"{what}: {text!r} is not a duration such as 90s, 10m or 2h")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def nginx_secs(text, what):
    """nginx time values: 130, 130s, 2m, 500ms (whole seconds are enough here)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", text)
    if not m:
        raise Failure(f"{what}: {text!r} is not an nginx time")
    unit = {None: 1, "s": 1, "ms": 0.001, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * unit


def nginx_size(text, what):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    if not m:
        raise Failure(f"{what}: {text!r} is not an nginx size")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


class Checker:
    def __init__(self, root):
        self.root = root
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        try:
            detail = fn()
        except Failure as e:
            self.failed += 1
            print(f"  FAIL {name}: {e}")
            return None
        except Exception as e:  # a file that cannot be read or parsed is a failure too
            self.failed += 1
            print(f"  FAIL {name}: {type(e).__name__}: {e}")
            return None
        self.passed += 1
        print(f"  ok   {name}: {detail}")
        return True

    # ---- what the binary declares -------------------------------------------------------

    def binary(self):
        server = read(self.root, "src/inbound/http/mod.rs")
        # The delivery route: the one the worker daemon, SNS and monitors post to (the
        # others answer people: a page's link, a call's keypress).
        routes = re.findall(r'\.route\(\s*"([^"]+)"\s*,\s*post\(serviceme\)', server)
        if len(routes) != 1:
            raise Failure(f"src/inbound/http/mod.rs: expected one delivery route (post(serviceme)), found {routes}")
        self.path = routes[0]

        m = re.search(r"MAX_BODY_BYTES\s*:\s*usize\s*=\s*([0-9_\s*]+);", server)
        if not m:
            raise Failure("src/inbound/http/mod.rs: MAX_BODY_BYTES not found")
        self.max_body = 1
        for factor in m.group(1).split("*"):
            self.max_body *= int(factor.strip().replace("_", ""))

        cli = read(self.root, CLI_OPTIONS)
        self.cli_env = {}
        for attr in re.findall(r"#\[arg\((.*?)\)\]", cli, re.S):
            env = re.search(r'env\s*=\s*"([A-Z0-9_]+)"', attr)
            if not env:
                continue
            default = re.search(r'default_value(?:_t)?\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)', attr)
            self.cli_env[env.group(1)] = default.group(1).strip('"') if default else None
        port = self.cli_env.get("PORT")
        if port is None or not port.isdigit():
            raise Failure(f"{CLI_OPTIONS}: no numeric `default_value_t` for env PORT")
        self.port = int(port)
        if self.cli_env.get("REQUEST_TIMEOUT") is None:
            raise Failure(f"{CLI_OPTIONS}: no default for env REQUEST_TIMEOUT")
        self.default_timeout = duration_secs(self.cli_env["REQUEST_TIMEOUT"], f"{CLI_OPTIONS} REQUEST_TIMEOUT")
        return (f"POST {self.path}, port {self.port}, REQUEST_TIMEOUT "
                f"{self.default_timeout}s, body limit {self.max_body} bytes")

    # ---- Procfile -----------------------------------------------------------------------

    def procfile(self):
        web = None
        for line in read(self.root, "Procfile").splitlines():
            if line.startswith("web:"):
                web = shlex.split(line[4:])
                break
        if not web:
            raise Failure("Procfile has no web process")
        if "serve" not in web:
            raise Failure(f"Procfile web command {' '.join(web)!r} does not run `serve`")
        for i, arg in enumerate(web):
            value = None
            if arg == "--port" and i + 1 < len(web):
                value = web[i + 1]
            elif arg.startswith("--port="):
                value = arg.split("=", 1)[1]
            if value is not None and value != str(self.port):
                raise Failure(f"Procfile passes --port {value}, nginx forwards to {self.port}")
        return f"{' '.join(web)!r} serves on PORT (default {self.port})"

    # ---- .ebextensions ------------------------------------------------------------------

    def ebextensions(self):
        self.options, self.resources = {}, {}
        files = sorted((self.root / ".ebextensions").glob("*.config"))
        if not files:
            raise Failure(".ebextensions/*.config not found")
        for path in files:
            doc = yaml.safe_load(path.read_text()) or {}
            for ns, values in (doc.get("option_settings") or {}).items():
                for key, value in (values or {}).items():
                    self.options[(ns, key)] = value
            self.resources.update(doc.get("Resources") or {})
        return f"{len(files)} files, {len(self.options)} options, {len(self.resources)} resources"

    def opt(self, ns, key):
        if (ns, key) not in self.options:
            raise Failure(f".ebextensions: {ns} {key} is not set")
        return self.options[(ns, key)]

    def sqsd_path(self):
        path = self.opt(SQSD, "HttpPath")
        if path != self.path:
            raise Failure(f".ebextensions HttpPath {path!r} != route {self.path!r} in src/inbound/http/mod.rs")
        mime = self.options.get((SQSD, "MimeType"), "application/json")
        if mime != "application/json":
            raise Failure(f".ebextensions MimeType {mime!r}: the service expects application/json")
        return f"HttpPath {path}"

    def env_port(self):
        port = str(self.opt(ENV, "PORT"))
        if port != str(self.port):
            raise Failure(f".ebextensions PORT {port} != {self.port} (cli.rs default, nginx upstream)")
        return f"PORT {port}"

    def env_names(self):
        known = set(self.cli_env)
        unknown = sorted(k for (ns, k) in self.options if ns == ENV and k not in known)
        if unknown:
            raise Failure(f".ebextensions sets {unknown}, which the service does not read "
                          f"(not in {CLI_OPTIONS} nor the aws backend's variables)")
        fmt = self.options.get((ENV, "LOG_FORMAT"))
        if fmt != "json":
            raise Failure(f".ebextensions LOG_FORMAT is {fmt!r}, deployments log json")
        return "every environment property is one the service reads; LOG_FORMAT json"

    def env_refs(self):
        refs = []
        for (ns, key), value in self.options.items():
            if ns == ENV and isinstance(value, str) and value.startswith("`"):
                target = json.loads(value.strip("`"))
                name = target.get("Ref") if isinstance(target, dict) else None
                if name is None:
                    raise Failure(f"{key}: only `{{\"Ref\": ...}}` bindings are expected, got {value}")
                if not name.startswith("AWS::") and name not in self.resources:
                    raise Failure(f"{key} refers to {name}, which no .ebextensions Resources define")
                refs.append(f"{key}->{name}")
        return ", ".join(refs) or "none"

    def timeouts(self):
        self.inactivity = int(self.opt(SQSD, "InactivityTimeout"))
        visibility = int(self.opt(SQSD, "VisibilityTimeout"))
        raw = self.options.get((ENV, "REQUEST_TIMEOUT"))
        request = duration_secs(raw, ".ebextensions REQUEST_TIMEOUT") if raw is not None else self.default_timeout
        if not request < self.inactivity:
            raise Failure(f"REQUEST_TIMEOUT {request}s must be below InactivityTimeout "
                          f"{self.inactivity}s, or sqsd gives up before the service answers")
        if not self.default_timeout < self.inactivity:
            raise Failure(f"the binary's default REQUEST_TIMEOUT {self.default_timeout}s is not "
                          f"below InactivityTimeout {self.inactivity}s")
        if not visibility > self.inactivity:
            raise Failure(f"VisibilityTimeout {visibility}s must exceed InactivityTimeout "
                          f"{self.inactivity}s, or a message in progress is handed out again")
        return f"REQUEST_TIMEOUT {request}s < InactivityTimeout {self.inactivity}s < VisibilityTimeout {visibility}s"

    def tables(self):
        def table_of(var):
            value = str(self.opt(ENV, var))
            name = json.loads(value.strip("`")).get("Ref") if value.startswith("`") else None
            resource = self.resources.get(name)
            if not resource or resource.get("Type") != "AWS::DynamoDB::Table":
                raise Failure(f"{var} is not bound to a DynamoDB table of .ebextensions")
            return name, resource.get("Properties", {})

        settings_name, settings = table_of("DBTABLE")
        keys = settings.get("KeySchema", [])
        if [k.get("KeyType") for k in keys] != ["HASH"]:
            raise Failure(f"{settings_name}: the settings table has a hash key only (the alarm name)")
        ledger_name, ledger = table_of("LEDGER_TABLE")
        keys = {k.get("AttributeName"): k.get("KeyType") for k in ledger.get("KeySchema", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise Failure(f"{ledger_name}: key schema {keys}, expected pk (HASH) and sk (RANGE)")
        ttl = ledger.get("TimeToLiveSpecification") or {}
        if ttl.get("AttributeName") != "expires_at" or ttl.get("Enabled") is not True:
            raise Failure(f"{ledger_name}: TTL must be enabled on expires_at, found {ttl}")
        policies = [r for r in self.resources.values()
                    if r.get("Type") in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")]
        text = json.dumps(policies)
        for name in (settings_name, ledger_name):
            if json.dumps([name, "Arn"]) not in text:
                raise Failure(f"no IAM policy in .ebextensions grants access to {name}")
        for policy in policies:
            for stmt in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                if any(a.startswith("dynamodb:") for a in actions) and "*" in json.dumps(stmt["Resource"]).replace("/index/*", ""):
                    raise Failure(f"statement {stmt.get('Sid')}: DynamoDB actions on a wildcard resource")
        return f"{settings_name} (settings), {ledger_name} (pk/sk, TTL expires_at), both in the IAM policy"

    # ---- nginx --------------------------------------------------------------------------

    def nginx(self):
        rel = ".platform/nginx/conf.d/proxy.conf"
        text = re.sub(r"#.*", "", read(self.root, rel))
        directives = dict(re.findall(r"^\s*([a-z_]+)\s+([^;]+?)\s*;", text, re.M))
        for name in NGINX_TIMEOUTS:
            if name not in directives:
                raise Failure(f"{rel}: {name} is not set (nginx's 60 s default is below "
                              f"InactivityTimeout {self.inactivity}s)")
            secs = nginx_secs(directives[name], f"{rel} {name}")
            if secs < self.inactivity:
                raise Failure(f"{rel}: {name} {directives[name]} is below InactivityTimeout "
                              f"{self.inactivity}s: nginx would cut requests sqsd still waits for")
        if "client_max_body_size" not in directives:
            raise Failure(f"{rel}: client_max_body_size is not set (nginx's default is 1m)")
        size = nginx_size(directives["client_max_body_size"], f"{rel} client_max_body_size")
        if size < SQS_MAX_MESSAGE:
            raise Failure(f"{rel}: client_max_body_size {size} bytes is below the largest SQS message")
        if size != self.max_body:
            raise Failure(f"{rel}: client_max_body_size {size} bytes != the service's limit "
                          f"{self.max_body} (MAX_BODY_BYTES in src/inbound/http/mod.rs)")
        # No location of our own: the Docker platform's nginx.conf has `location /` in the
        # server block that includes conf.d/elasticbeanstalk/*.conf, so another one there
        # stops nginx (duplicate location "/"); and a replaced nginx.conf would lose the
        # platform's upstream. Both platforms' own locations append the client's address to
        # X-Forwarded-For, which keeps outsiders from passing as the worker daemon
        # (tests/it/nginx.rs starts nginx with each layout, scripts/eb-nginx.sh).
        if (self.root / ".platform/nginx/nginx.conf").exists():
            raise Failure(".platform/nginx/nginx.conf replaces the platform's nginx.conf "
                          "(and the Docker platform's upstream): extend conf.d instead")
        eb_dir = self.root / ".platform/nginx/conf.d/elasticbeanstalk"
        for f in sorted(eb_dir.glob("*.conf")) if eb_dir.is_dir() else []:
            loc = re.sub(r"#.*", "", f.read_text())
            if re.search(r"\blocation\s+/\s*\{", loc):
                raise Failure(f"{f.relative_to(self.root)}: a `location /` clashes with the "
                              "Docker platform's own (nginx: duplicate location \"/\")")
        return (", ".join(f"{n} {directives[n]}" for n in NGINX_TIMEOUTS)
                + f" >= {self.inactivity}s; client_max_body_size {directives['client_max_body_size']}")

    # ---- Dockerfile ---------------------------------------------------------------------

    def dockerfile(self):
        text = read(self.root, "Dockerfile")
        text = re.sub(r"\\\n", " ", re.sub(r"(?m)^\s*#.*\n", "", text))
        stages = re.split(r"(?im)^\s*FROM\s", text)
        final = stages[-1]  # only the runtime stage's instructions matter
        exposed = [p.split("/")[0] for line in re.findall(r"(?im)^\s*EXPOSE\s+(.+)$", final)
                   for p in line.split()]
        if not exposed or exposed[0] != str(self.port):
            raise Failure(f"Dockerfile EXPOSE {exposed}: EB forwards to the first exposed port, "
                          f"which must be {self.port}")
        env = {}
        for line in re.findall(r"(?im)^\s*ENV\s+(.+)$", final):
            words = shlex.split(line)
            if words and "=" not in words[0] and len(words) >= 2:  # legacy `ENV KEY value`
                env[words[0]] = " ".join(words[1:])
            else:
                env.update(w.split("=", 1) for w in words if "=" in w)
        if env.get("PORT") != str(self.port):
            raise Failure(f"Dockerfile ENV PORT={env.get('PORT')}, expected {self.port} (EXPOSE)")
        if "REQUEST_TIMEOUT" in env:
            t = duration_secs(env["REQUEST_TIMEOUT"], "Dockerfile REQUEST_TIMEOUT")
            if not t < self.inactivity:
                raise Failure(f"Dockerfile REQUEST_TIMEOUT {t}s is not below InactivityTimeout {self.inactivity}s")
        run = []
        for kind in ("ENTRYPOINT", "CMD"):
            found = re.findall(rf"(?im)^\s*{kind}\s+(.+)$", final)
            if found:
                value = found[-1].strip()
                run += json.loads(value) if value.startswith("[") else shlex.split(value)
        if not run or "serve" not in run:
            raise Failure(f"Dockerfile ENTRYPOINT/CMD {run} does not run `serve`")
        return f"EXPOSE {exposed[0]}, ENV PORT={env['PORT']}, runs {' '.join(run)}"

    # ---- cron.yaml ----------------------------------------------------------------------

    def cron(self):
        doc = yaml.safe_load(read(self.root, "cron.yaml")) or {}
        if doc.get("version") != 1:
            raise Failure(f"cron.yaml version is {doc.get('version')!r}, expected 1")
        tasks = doc.get("cron") or []
        names = [t.get("name") for t in tasks]
        if len(set(names)) != len(names):
            raise Failure(f"cron.yaml task names are not unique: {names}")
        for task in tasks:
            if task.get("url") != self.path:
                raise Failure(f"cron.yaml task {task.get('name')!r} posts to {task.get('url')!r}, "
                              f"the service only answers POST {self.path}")
            if len(str(task.get("schedule", "")).split()) != 5:
                raise Failure(f"cron.yaml task {task.get('name')!r}: schedule "
                              f"{task.get('schedule')!r} is not a 5-field cron expression")
        if "reconcile" not in names:
            raise Failure("cron.yaml has no `reconcile` task")
        return ", ".join(f"{t['name']} {t['url']} {t['schedule']!r}" for t in tasks)

    def run(self):
        # The binary's declarations come first: every other check compares against them.
        if not self.check(f"binary (src/inbound/http/mod.rs, {CLI_OPTIONS})", self.binary):
            return
        self.check("Procfile", self.procfile)
        if self.check(".ebextensions", self.ebextensions):
            self.check("sqsd HttpPath", self.sqsd_path)
            self.check("PORT", self.env_port)
            self.check("environment names", self.env_names)
            self.check("environment references", self.env_refs)
            self.check("timeouts", self.timeouts)
            if hasattr(self, "inactivity"):
                self.check("nginx", self.nginx)
                self.check("Dockerfile", self.dockerfile)
            else:
                self.failed += 1
                print("  FAIL nginx, Dockerfile: not checked without an InactivityTimeout")
            self.check("tables and policy", self.tables)
        self.check("cron.yaml", self.cron)


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    checker = Checker(root)
    checker.run()
    print(f"  consistency: {checker.passed} of {checker.passed + checker.failed} sub-checks ok")
    sys.exit(1 if checker.failed else 0)


if __name__ == "__main__":
    main()
