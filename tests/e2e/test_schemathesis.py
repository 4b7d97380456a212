"""schemathesis against the live server's own OpenAPI document: over 1,000 generated
requests, no 5xx, every response as documented."""

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import StackFactory


async def test_generated_requests_find_no_server_error_or_schema_violation(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    # The fuzzer registers webhook endpoints with any URL it likes: nothing may leave this
    # machine, so only loopback addresses are accepted here (and no DNS is asked).
    # Its endpoints may only name a loopback address where nothing listens.
    stack = await make_stack(register_endpoint=False,
                             GATEWAY_WEBHOOKS__ALLOW_PUBLIC_TARGETS="false",
                             GATEWAY_WEBHOOKS__ALLOW_PRIVATE_TARGETS='["127.254.254.254/32"]')
    account = await stack.signup("fuzz@example.org", "fuzz password 1")
    await stack.invoice(account["id"])
    before = stack.gateway.log().count(" gateway.http: ")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run",
         f"{stack.gateway.base}/v1/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,"
                     "content_type_conformance,response_schema_conformance",
         "--max-examples", "60", "--workers", "2", "--request-timeout", "10",
         "--generation-deterministic", "--suppress-health-check", "all",
         # Event streams stay open until the invoice is final, so every fuzzed call would
         # wait for the timeout; they have tests of their own (checkout page, headers).
         "--exclude-path-regex", r"\{invoice_id\}/events$",
         "-H", f"Authorization: Bearer {stack.key}", "--no-color"],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "HOME": str(tmp_path)},
    )
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    Path(os.environ.get("ST_REPORT", "/dev/null")).write_text(result.stdout)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    requests = stack.gateway.log().count(" gateway.http: ") - before
    assert requests >= 1000, f"only {requests} requests were generated\n{report}"
