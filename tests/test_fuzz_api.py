"""Schemathesis against the running gateway's own OpenAPI (GET /openapi.json of the session stack:
real Rasa, action server and gateway). Every HTTP route and method is fuzzed with valid and
invalid input and each response is checked: no 5xx, a documented status code, and a body that
matches the documented schema.

Bounded for CI on 2 cores: at most MAX_EXAMPLES generated cases per operation (plus Schemathesis's
deterministic boundary-value "coverage" cases), no deadline, and derandomized with no example
database, so every run sends the same requests. The number of cases run is printed at the end.

Left out, on purpose:
- WebSocket routes (/v1/voice/stream, /twilio/media-stream): not in OpenAPI; their wire parsers
  are fuzzed in tests/test_fuzz_parsers.py.
- POST /trainer/api/retrain: it trains a new model for minutes, copies it over the session's
  shared model and reloads the shared Rasa. tests/test_trainer_page.py covers it on a copy.
"""
from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import ROOT, show

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Per operation: how many cases ran, and which status codes they got.
CASES: Counter = Counter()
STATUSES: Dict[str, Counter] = defaultdict(Counter)
SERVER_ERRORS: Dict[str, str] = {}  # operation → the gateway log's tail after its first 5xx
# Rate-limited operations (they document 429) see each case come from its own client address
# (RFC 5737 documentation range, believed by uvicorn from loopback as a proxy's X-Forwarded-For),
# so the fuzzing reaches the handler and leaves the quota of 127.0.0.1, which the session's other
# tests share, untouched.
CLIENTS = (f"198.51.100.{i % 250 + 1}" for i in itertools.count())


def shipped_data_digest() -> str:
    """The trainer routes write into data/nlu when an inbox item is labelled: the fuzzing must not."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "data" / "nlu").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def gateway_schema(stack, request):
    config = schemathesis.Config.from_dict({
        # The trainer API's bearer token (voice_gateway/routes/trainer.py, require_trainer): every
        # case carries the session gateway's real token, so the routes behind it are reached.
        "parameters": {"header.authorization": f"Bearer {stack.settings.resolved_trainer_token()}"},
        "generation": {"mode": "all", "deterministic": True},
        # Failure reports show the exact request (session ids, client addresses), all but the token.
        "output": {"sanitization": {"keys-to-sanitize": ["authorization"], "sensitive-markers": ["token", "secret"]}},
    })
    schema = schemathesis.openapi.from_url(f"{stack.settings.gateway_url}/openapi.json", config=config)
    before = shipped_data_digest()
    yield schema
    lines = [f"schemathesis: {sum(CASES.values())} cases run against {len(CASES)} operations "
             f"(max_examples={MAX_EXAMPLES} per operation, plus boundary-value cases)"]
    lines += [f"  {label}: {count} cases, statuses {dict(sorted(STATUSES[label].items()))}"
              for label, count in sorted(CASES.items())]
    for label, log in SERVER_ERRORS.items():
        lines += [f"--- {label} answered 5xx; {stack.logs_dir}/gateway.log ends with:", *log.splitlines()]
    show(request, lines)
    assert shipped_data_digest() == before, "fuzzing the trainer API changed data/nlu"


def gateway_log_tail(stack, size: int = 4000) -> str:
    path = Path(stack.logs_dir) / "gateway.log"
    time.sleep(1.0)  # uvicorn logs the traceback after it has sent the 500
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no gateway log)"


schema = schemathesis.pytest.from_fixture("gateway_schema").exclude(method="POST", path="/trainer/api/retrain")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_gateway_openapi(case, stack):
    headers = {}
    if "429" in case.operation.responses.status_codes:
        headers["X-Forwarded-For"] = next(CLIENTS)
    response = case.call(base_url=stack.settings.gateway_url, headers=headers, timeout=120)
    CASES[case.operation.label] += 1
    STATUSES[case.operation.label][response.status_code] += 1
    if response.status_code >= 500 and case.operation.label not in SERVER_ERRORS:
        # The gateway's side of it (its traceback), shown at the end of the module.
        SERVER_ERRORS[case.operation.label] = gateway_log_tail(stack)
    case.validate_response(response, checks=CHECKS, headers=headers)
