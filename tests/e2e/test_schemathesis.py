"""schemathesis against the live server's own OpenAPI document, `--checks all` (positive
and negative data, the stateful phase following the document's links), once as a service
key and once as a customer: no finding, and no 5xx or traceback in the gateway's log."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, StackFactory
from tests.support.services import create_api_key

# Per operation, in the fuzzing phase (the coverage phase's boundary and wrong-type cases
# of every parameter, and the stateful phase, come on top). 50 reached every (operation,
# status) pair that 100 reached (128 of them at seed 20, and one more: a NUL in an email,
# then allowed by the document), in 40 instead of 66 CPU seconds; 25 lost six. 30: the
# suite's ten minutes on two cores (the test runs on SQLite and again on PostgreSQL).
# ST_EXAMPLES=15 makes a quick local run while changing the document; ST_EXAMPLES=500 a
# deeper one.
# What the fuzzer checks is the HTTP contract; the database's own limits (a NUL in text,
# an integer's range) are strictest on PostgreSQL, where it runs (once).
pytestmark = pytest.mark.any_database

EXAMPLES = int(os.environ.get("ST_EXAMPLES", "30"))
DEAD_HOOK = "http://127.254.254.254:9/hook"  # a loopback address where nothing listens

# Operations whose refusals of schema-valid data are decisions the document cannot
# express: a password or code that is wrong, an email change without the right password,
# a period whose end is not after its start, a voucher code that is not a valid one.
# Everywhere else a schema-valid request must be accepted (2xx, or 401/403/404/409/429).
REFUSED_BY_RULES = (
    ("GET", "/v1/payments"),  # `to` must be after `from`
    ("PATCH", "/v1/me"), ("POST", "/v1/me/password"), ("POST", "/v1/me/totp"),
    ("POST", "/v1/me/totp/confirm"), ("DELETE", "/v1/me/totp"), ("DELETE", "/v1/me"),
    ("POST", "/v1/me/vouchers"),
)


def config(tmp: Path, account_id: str) -> Path:
    lines = [
        # An invoice's event stream stays open until the invoice is final: one event
        # (its status now) is enough.
        "max-stream-events = 1",
        # schemathesis keeps a cache of crashes and a report directory: here, not in the
        # repository.
        "[cache]", f'directory = "{tmp / "st-cache"}"',
        "[reports]", f'directory = "{tmp / "st-reports"}"',
        "[phases.stateful]", "max-steps = 10",
    ]
    for method, path in REFUSED_BY_RULES:
        lines += ["[[operations]]", f'include-method = "{method}"', f'include-path = "{path}"',
                  "checks.positive_data_acceptance.expected-statuses = "
                  '["2xx", "401", "403", "404", "409", "422", "429"]']
    # Valid data reaches the operations behind: an account that exists, and a webhook
    # target that is a dead loopback address (the gateway here refuses any other).
    lines += ["[[operations]]", 'include-method = "POST"', 'include-path = "/v1/invoices"',
              f'parameters = {{ "body.account_id" = "{account_id}" }}',
              "[[operations]]", 'include-method = "POST"',
              'include-path = "/v1/webhook-endpoints"',
              f'parameters = {{ "body.url" = "{DEAD_HOOK}" }}']
    path = tmp / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fuzz(stack: Stack, tmp: Path, name: str, token: str, account_id: str,
         *filters: str) -> subprocess.Popen[str]:
    """One schemathesis run in its own process, with one worker: the two runs go side by
    side, one per core (threads in one process trip over Python 3.11's `ast` module)."""
    out = tmp / name
    out.mkdir()
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "schemathesis"),
         "--config-file", str(config(out, account_id)), "run",
         f"{stack.gateway.base}/v1/openapi.json",
         "--checks", "all", "--mode", "all", "--max-examples", str(EXAMPLES),
         "--workers", "1", "--request-timeout", "10", "--seed", "20",
         "--suppress-health-check", "all", "--max-failures", "20",
         "-H", f"Authorization: Bearer {token}", "--no-color",
         "--report", "ndjson", "--report-dir", str(out / "st-reports"), *filters],
        stdout=(out / "schemathesis.txt").open("w"), stderr=subprocess.STDOUT, text=True,
        cwd=out, env={**os.environ, "SCHEMATHESIS_HOOKS": "", "HOME": str(out)},
    )


# Operations with nothing to vary (no parameters, no body, no credentials): one request
# is all there is to send.
CONSTANT = {"GET /healthz", "GET /v1/openapi.json", "GET /v1/webhook-endpoints"}


def fuzzed_cases(out: Path) -> dict[str, int]:
    """Test cases per operation in the fuzzing phase, from schemathesis' NDJSON report."""
    counts: dict[str, int] = {}
    [report] = (out / "st-reports").glob("*.ndjson")
    with report.open() as lines:
        for line in lines:
            if not line.startswith('{"ScenarioFinished"'):
                continue
            event = json.loads(line)["ScenarioFinished"]
            phase = event["phase"]
            if (phase["name"] if isinstance(phase, dict) else phase) != "fuzzing":
                continue
            label = event["recorder"]["label"]
            counts[label] = counts.get(label, 0) + len(event["recorder"]["cases"])
    return counts


def finished(run: subprocess.Popen[str], tmp: Path, name: str) -> str:
    try:
        run.wait(timeout=900)
    finally:
        run.kill()
    report = (tmp / name / "schemathesis.txt").read_text()
    assert run.returncode == 0, f"schemathesis as {name}:\n{report[-8000:]}"
    cases = fuzzed_cases(tmp / name)
    short = {op: n for op, n in cases.items() if n < (1 if op in CONSTANT else EXAMPLES)}
    assert cases and not short, f"too few examples as {name}: {short}"
    print(f"{name}: {len(cases)} operations, fuzzing cases from {min(cases.values())} "
          f"({', '.join(sorted(op for op in cases if op in CONSTANT))}) to "
          f"{max(cases.values())}, at least {EXAMPLES} for each other one")
    return report


async def test_generated_requests_find_nothing_as_service_key_and_as_customer(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    # The fuzzer registers webhook endpoints: nothing may leave this machine, so only one
    # dead loopback address is accepted as a target (and no DNS is asked), and a failed
    # delivery is not tried again while the test runs.
    stack = await make_stack(
        register_endpoint=False,
        GATEWAY_WEBHOOKS__ALLOW_PUBLIC_TARGETS="false",
        GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS='["127.254.254.254/32"]',
        GATEWAY_WEBHOOKS__RETRY_SCHEDULE_SECONDS="[3600]",
        GATEWAY_PLANS='{"vps-small": {"price": "9.99", "currency": "EUR"}}',
        # Generated signups and logins get past the per-address limits (which then answer
        # 429, an accepted answer) to the checks behind them.
        GATEWAY_SECURITY__LOGIN_PER_IP_PER_MINUTE="1000",
        GATEWAY_SECURITY__SIGNUP_PER_IP_PER_HOUR="1000",
    )
    key = await create_api_key(stack.gateway.env, "fuzz", "invoices:write", "invoices:read",
                               "events:read", "personal_data:read", "webhooks:manage",
                               "payments:read")
    stack.secrets.add(key)
    account = await stack.signup("fuzz@example.org", "fuzz password 1")
    await stack.invoice(account["id"])
    token = await stack.login("fuzz@example.org", "fuzz password 1")
    offset = len(stack.gateway.log())

    started = time.monotonic()
    service = fuzz(stack, tmp_path, "service", key, account["id"],
                   "--include-tag-regex", "^(service|finance|webhooks|operations)$")
    # The customer's operations and the invoice stream (key or session). Logging out would
    # end the fuzzing session itself; test_accounts covers it. (One filter: filters of
    # different kinds only exclude what matches them all.)
    customer = fuzz(stack, tmp_path, "customer", token, account["id"],
                    "--exclude-path-regex",
                    r"^/(healthz|v1/(openapi\.json|payments.*|webhook-endpoints.*|events.*|"
                    r"invoices|invoices/\{invoice_id\}|accounts/\{account_id\}(/export)?|"
                    r"sessions/current))$")
    reports = [finished(service, tmp_path, "service"), finished(customer, tmp_path, "customer")]
    print(f"schemathesis: {time.monotonic() - started:.0f} s")
    for report in reports:
        assert "No issues found" in report or " passed" in report, report[-3000:]

    log = stack.gateway.log()[offset:]
    statuses = [int(s) for s in re.findall(r" gateway\.http: \S+ \S+ (\d{3}) ", log)]
    assert statuses and not [s for s in statuses if s >= 500], log[-4000:]
    assert "Traceback" not in log and " ERROR " not in log, log[-4000:]
    print(f"{len(statuses)} requests; " + json.dumps(
        {str(s): statuses.count(s) for s in sorted(set(statuses))}))
