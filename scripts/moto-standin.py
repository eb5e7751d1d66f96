"""moto's server as the tests' DynamoDB (and SNS, SQS, ...) stand-in, with two changes.

1. One DynamoDB request at a time. DynamoDB applies every request atomically (a TransactWriteItems
   is serializable against every other write); moto's threaded server does not: its
   TransactWriteItems copies the tables for rollback and restores them on a failed
   condition, without a lock, so two concurrent transactions can undo each other's writes
   (a storm counter that goes back down, `dictionary changed size during iteration`).
   Connections are still served concurrently, and other services' requests (an SQS long
   poll waits inside its request) are not serialised.
2. Faults on request, per table, for what moto never does by itself:
   `POST /_standin/unprocessed {"table": T, "times": N}` makes the next N BatchGetItem
   requests that read table T answer 200 with every key left in `UnprocessedKeys` (what
   DynamoDB does when it throttles part of a batch).
3. A count of the DynamoDB requests per table and operation, for tests of how many calls an
   outcome costs: `GET /_standin/calls?table=T` answers `{"TransactWriteItems": 2, ...}`.
4. What moto "sent" and keeps only inside: `GET /_standin/sent` answers
   `{"sms": [{"to", "message"}], "emails": [{"from", "to", "subject", "body"}]}` (SNS
   Publish to phone numbers, SES SendEmail), in every account and region.

Usage: python3 moto-standin.py PORT. Prints "ready" once listening; stops when its
standard input closes, so it never outlives whoever started it.
"""

import io
import json
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

moto_app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()
faults = {}  # table name -> BatchGetItem answers still to leave unprocessed
calls = {}  # table name -> {operation: requests}


def tables_of(request):
    """The tables a DynamoDB request names, whichever of its shapes it has."""
    named = set(request.get("RequestItems", {}))
    if "TableName" in request:
        named.add(request["TableName"])
    for item in request.get("TransactItems", []):
        for op in item.values():
            if "TableName" in op:
                named.add(op["TableName"])
    return named


def answer(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))],
    )
    return [data]


def sent():
    """Every SMS SNS published and every e-mail SES sent, as moto keeps them."""
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    sms, emails = [], []
    for regions in sns_backends.values():
        for backend in regions.values():
            for to, message in backend.sms_messages.values():
                sms.append({"to": to, "message": message})
    for regions in ses_backends.values():
        for backend in regions.values():
            for m in backend.sent_messages:
                emails.append(
                    {
                        "from": getattr(m, "source", None),
                        "to": getattr(m, "destinations", {}).get("ToAddresses", []),
                        "subject": getattr(m, "subject", None),
                        "body": getattr(m, "body", None),
                    }
                )
    return {"sms": sms, "emails": emails}


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    if environ.get("PATH_INFO") == "/_standin/unprocessed":
        ask = json.loads(body or b"{}")
        with one_at_a_time:
            faults[ask["table"]] = int(ask.get("times", 1))
        return answer(start_response, "200 OK", {"table": ask["table"]})
    if environ.get("PATH_INFO") == "/_standin/sent":
        return answer(start_response, "200 OK", sent())
    if environ.get("PATH_INFO") == "/_standin/calls":
        table = environ.get("QUERY_STRING", "").partition("table=")[2]
        with one_at_a_time:
            return answer(start_response, "200 OK", calls.get(table, {}))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith("DynamoDB_"):
        # Other services as moto serves them: an SQS long poll waits in its request.
        return moto_app(environ, start_response)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        request = {}
    operation = target.rpartition(".")[2]
    with one_at_a_time:
        for table in tables_of(request):
            counted = calls.setdefault(table, {})
            counted[operation] = counted.get(operation, 0) + 1
        if operation == "BatchGetItem":
            wanted = request.get("RequestItems", {})
            hit = [t for t in wanted if faults.get(t, 0) > 0]
            if hit:
                for t in hit:
                    faults[t] -= 1
                return answer(
                    start_response,
                    "200 OK",
                    {"Responses": {t: [] for t in wanted}, "UnprocessedKeys": wanted},
                )
        # The whole answer is produced under the lock: moto builds it lazily sometimes.
        return list(moto_app(environ, start_response))


def main():
    server = make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
