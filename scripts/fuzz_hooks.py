"""Schemathesis hooks for `scripts/fuzz` (loaded through SCHEMATHESIS_HOOKS).

- A request that carries a valid Idempotency-Key gets a fresh one, so generated keys do not
  collide into replays (422 idempotency_key_reused); invalid or missing keys are left alone so
  the 400 paths are still exercised.
- Most `{id}` path parameters of workspace routes name a demo workspace, so requests get past
  the 404 into the handlers.
- Every request is counted: one line per response (`METHOD /path/template STATUS`) appended to
  $FUZZ_REQUESTS_LOG, which the script counts.

Deterministic for a given $FUZZ_SEED (with `--workers 1`), like schemathesis' own `--seed`.
"""

import itertools
import os
import random
import re

import schemathesis

VALID_KEY = re.compile(r"^[\x20-\x7E]{1,255}$")  # what the API accepts as an Idempotency-Key
SEED = os.environ.get("FUZZ_SEED", "0")
WORKSPACES = [w for w in os.environ.get("FUZZ_WORKSPACES", "demo-ws-1,demo-ws-2").split(",") if w]
WORKSPACE_ROUTES = ("/partner/workspace", "/platform/workspaces")  # also /partner/workspaces
PARTNER = os.environ.get("FUZZ_PARTNER", "demo-partner")
PARTNER_ROUTES = ("/platform/partners",)
LOG = os.environ.get("FUZZ_REQUESTS_LOG")

_rng = random.Random(SEED)
_keys = itertools.count(1)


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if (
        WORKSPACES
        and path_parameters
        and "id" in path_parameters
        and context.operation.path.startswith(WORKSPACE_ROUTES)
        and _rng.random() < 0.7
    ):
        path_parameters["id"] = _rng.choice(WORKSPACES)
    if (
        path_parameters
        and "id" in path_parameters
        and context.operation.path.startswith(PARTNER_ROUTES)
        and _rng.random() < 0.7
    ):
        path_parameters["id"] = PARTNER
    return path_parameters


@schemathesis.hook
def map_body(context, body):
    # A usage event names its workspace in the body: mostly a demo one, to reach the handler.
    if (
        WORKSPACES
        and context.operation.path == "/platform/usage"
        and isinstance(body, dict)
        and "workspace_id" in body
        and _rng.random() < 0.7
    ):
        body["workspace_id"] = _rng.choice(WORKSPACES)
    return body


@schemathesis.hook
def before_call(context, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            case.headers[name] = f"fuzz-{SEED}-{next(_keys)}"


@schemathesis.hook
def after_call(context, case, response):
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")
