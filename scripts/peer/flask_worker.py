"""The original service's work, in Flask and boto3, for the benchmark's comparison.

What the 2014 Python worker did with each alarm (../shared/reference/origin.md): read the
alarm's settings from DynamoDB (GetItem), list the account's open cases (DescribeCases) and
look for one whose subject is the alarm name, then add a communication to it or open a case
(CreateCase). Run by scripts/bench-aws.sh under gunicorn (4 workers x 8 threads) against the
same canned AWS endpoint as the service (AWS_ENDPOINT_URL); never against real AWS.
"""

import json
import os

import boto3
from flask import Flask, jsonify, request

app = Flask(__name__)
_region = os.environ.get("DBREGION", "us-east-1")
_table = os.environ.get("DBTABLE", "cw-support-api")
# One client per process, as a long-running worker would keep them.
_dynamodb = boto3.client("dynamodb", region_name=_region)
_support = boto3.client("support", region_name="us-east-1")


@app.route("/healthz")
def healthz():
    return jsonify(status="ok")


@app.route("/serviceme", methods=["POST"])
def serviceme():
    body = request.get_json(force=True, silent=True)
    if body is None:
        return jsonify(error="not_json"), 415
    alarm = json.loads(body["Message"]) if "TopicArn" in body and "Message" in body else body
    name = alarm["AlarmName"]
    item = _dynamodb.get_item(TableName=_table, Key={"name": {"S": name}}).get("Item", {})
    priority = item.get("priority", {}).get("S", "low")
    action = item.get("action", {}).get("S", '"Please contact us for more information"')
    cases = _support.describe_cases(includeResolvedCases=False).get("cases", [])
    existing = next((c for c in cases if c.get("subject") == name), None)
    text = "\n".join(
        [
            f"Alarm: {name}",
            f"Description: {alarm['AlarmDescription']}",
            f"Time: {alarm['StateChangeTime']}",
            "Action:",
            json.dumps(json.loads(action), indent=2),
            "Raw alarm:",
            json.dumps(alarm, indent=2),
        ]
    )
    if existing:
        _support.add_communication_to_case(
            caseId=existing["caseId"], communicationBody="It's happened again!\n" + text
        )
        return jsonify(outcome="updated", caseId=existing["caseId"], alarm=name)
    case = _support.create_case(
        subject=name,
        serviceCode="amazon-elastic-compute-cloud-linux",
        categoryCode="other",
        severityCode=priority,
        communicationBody=text,
        language="en",
        issueType="technical",
    )
    return jsonify(outcome="created", caseId=case["caseId"], alarm=name)
