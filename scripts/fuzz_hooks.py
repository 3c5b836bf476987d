"""Schemathesis hooks for `scripts/fuzz` (loaded through SCHEMATHESIS_HOOKS).

- A request that carries a valid Idempotency-Key gets a fresh one, so generated keys do not
  collide into replays (422 idempotency_key_reused); invalid or missing keys are left alone so
  the 400 paths are still exercised.
- Most `{id}` path parameters of workspace routes name a demo workspace, so requests get past
  the 404 into the handlers.
- Some amounts in bodies (decimal strings: `amount`, `points`, `threshold`, rates...) become
  decimals with many places or out of range, and some `cursor` query parameters become hand-made
  ones (a raw index key, random base64, a well-formed cursor of another listing or tenant): each
  must be answered as documented (400 `invalid_request` or a page), never 5xx.
- Every request is counted: one line per response (`METHOD /path/template STATUS`) appended to
  $FUZZ_REQUESTS_LOG, which the script counts.

Deterministic for a given $FUZZ_SEED (with `--workers 1`), like schemathesis' own `--seed`.
"""

import base64
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

# Body fields that carry a decimal amount as a string, and the maps whose values are amounts.
AMOUNT_FIELDS = {
    "amount", "points", "price_per_point", "threshold", "monthly_cap", "min_points", "max_points",
    "quantity", "rate",
}
AMOUNT_MAPS = {"rates"}
ODD_AMOUNTS = [
    "0.99999999999999999999999999999",
    "0.000000000000000000000000000001",
    "-0.000000000000000000000000000001",
    "1.005",
    "10.123456789",
    "99999999999999999999999999999.99",
    "79228162514264337593543950336",
    "0.00000000000000000000000000000000000001",
]


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# GET routes that page with `?cursor=`.
CURSOR_ROUTES = (
    "/partner/ledger", "/partner/events", "/partner/wallet", "/partner/workspaces", "/workspace/ledger",
    "/platform/partners",
)
HANDMADE_CURSORS = [
    # A raw index key with an empty index sort key (once a 500 from DynamoDB).
    "CldTI3gKTEVER0VSIzAwMDAwMDAwMDAwMDAwMDAwMDAx",
    # Earlier formats: a raw ledger sort key, a bare workspace id.
    _b64("LEDGER#00000000000000000001"),
    "demo-ws-1",
    # Well-formed cursors of each listing, for the demo tenants and for another one.
    _b64("c1.ledger.ws:demo-ws-1.1"),
    _b64("c1.ledger.ws:demo-ws-2.18446744073709551615"),
    _b64("c1.ledger.partner:demo-partner.1"),
    _b64("c1.ledger.ws:other-ws.1"),
    _b64("c1.partner-ledger.demo-partner.99999999999999999999.demo-ws-2.1"),
    _b64("c1.partner-ledger.demo-partner.0.other-ws.1"),
    _b64("c1.partner-ledger.other-partner.1.demo-ws-1.1"),
    _b64("c1.events.demo-partner.99999999999999999999.0.evt_0"),
    _b64("c1.events.demo-partner.1.0.evt_zz"),
    _b64("c1.workspaces.demo-partner.demo-ws-1"),
    _b64("c1.workspaces.other-partner.demo-ws-1"),
    _b64("c1.partners.platform.demo-partner"),
    # Out of shape: a number too large, a sign, an empty field, an unknown version.
    _b64("c1.ledger.ws:demo-ws-1.18446744073709551616"),
    _b64("c1.ledger.ws:demo-ws-1.+1"),
    _b64("c1.events.demo-partner..0.evt_1"),
    _b64("c9.ledger.ws:demo-ws-1.1"),
]

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


def _odd_amounts(value):
    """Replaces some decimal-string amounts anywhere in `value` with odd ones."""
    if isinstance(value, list):
        return [_odd_amounts(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key in AMOUNT_FIELDS and isinstance(v, str) and _rng.random() < 0.3:
            out[key] = _rng.choice(ODD_AMOUNTS)
        elif key in AMOUNT_MAPS and isinstance(v, dict):
            out[key] = {k: _rng.choice(ODD_AMOUNTS) if isinstance(x, str) and _rng.random() < 0.3 else x
                        for k, x in v.items()}
        else:
            out[key] = _odd_amounts(v)
    return out


def _random_cursor():
    raw = bytes(_rng.randrange(256) for _ in range(_rng.randrange(1, 48)))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@schemathesis.hook
def map_query(context, query):
    if context.operation.method.upper() != "GET" or context.operation.path not in CURSOR_ROUTES:
        return query
    if _rng.random() < 0.4:
        query = dict(query or {})
        query["cursor"] = _random_cursor() if _rng.random() < 0.25 else _rng.choice(HANDMADE_CURSORS)
    return query


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
    return _odd_amounts(body)


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
