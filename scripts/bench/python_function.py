"""The Python comparison for init-bench: a Python Lambda of this kind, run by a stand-in for the
Python runtime interface client.

What Lambda's Python runtime does before the first event: it starts the interpreter, imports its
runtime client (here: the standard library's http.client and json), imports the handler module,
whose top level imports boto3 and stripe, builds a DynamoDB client and sets stripe.api_key, then
asks the Runtime API for the next event. scripts/benchmarks runs it with the pinned boto3 and
stripe of .venv-bench/.
"""

import http.client
import json
import os

# ---- the handler module's top level: the init work being measured ----
import boto3
import stripe

dynamodb = boto3.client("dynamodb")
TABLE_NAME = os.environ["TABLE_NAME"]
# The Rust functions read their key from SSM at init; this one takes it from the environment
# (one local round trip fewer, in Python's favour).
stripe.api_key = os.environ.get("STRIPE_SECRET_KEY", "sk_test_init_bench")


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"table": TABLE_NAME})}


# ---- the runtime interface client stand-in ----
def main():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    conn = http.client.HTTPConnection(api)
    while True:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        answer = conn.getresponse()
        event = json.loads(answer.read() or b"null")
        request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id", "")
        body = json.dumps(handler(event, None))
        conn.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/response", body)
        conn.getresponse().read()


if __name__ == "__main__":
    main()
