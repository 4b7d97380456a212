"""Issue 16, item 9: the gateway talks TLS wherever it talks to another machine. SMTP
uses STARTTLS by default (plain only to a loopback host), and `gateway serve` warns in
one line when it would serve customers in clear. (Webhooks: test_webhook_targets.)"""

import os
from pathlib import Path

import pytest

from gateway.adapters.mail import SmtpMailer
from gateway.config import ConfigError, load
from tests.support.cli import run_gateway
from tests.unit.test_config import base_env


def smtp(tmp_path: Path, **values: str) -> dict[str, str]:
    return base_env(tmp_path) | {f"GATEWAY_SMTP__{k.upper()}": v for k, v in values.items()}


def test_smtp_uses_tls_by_default_and_refuses_plain_to_a_remote_host(tmp_path: Path) -> None:
    remote = load(None, smtp(tmp_path, host="mail.example.org", port="587")).smtp
    assert remote is not None and remote.starttls is True and not remote.tls
    implicit = load(None, smtp(tmp_path, host="mail.example.org", port="465", tls="true")).smtp
    assert implicit is not None and implicit.tls and not implicit.starttls
    with pytest.raises(ConfigError) as refused:
        load(None, smtp(tmp_path, host="mail.example.org", starttls="false"))
    assert "in clear" in str(refused.value) and "starttls = true" in str(refused.value)
    for host in ("127.0.0.1", "localhost", "::1"):
        local = load(None, smtp(tmp_path, host=host)).smtp
        assert local is not None and not local.starttls and not local.tls, host  # plain


async def test_the_mailer_never_hands_mail_over_in_clear_to_a_remote_host(
        caplog: pytest.LogCaptureFixture) -> None:
    # No connection is attempted: the refusal comes first (port 9 would be discard).
    mailer = SmtpMailer("192.0.2.10", 9, sender="gw@example.org", timeout=0.5)
    assert await mailer.send("someone@example.org", "subject", "body") is False
    assert "plain SMTP only to a loopback host" in caplog.text
    assert "someone@example.org" not in caplog.text


def test_serve_warns_in_one_line_when_customers_would_be_served_in_clear(
        tmp_path: Path) -> None:
    base = base_env(tmp_path)  # the database is not migrated: serve stops after the warning

    def serve(**server: str) -> str:
        env = {**os.environ, **base,
               **{f"GATEWAY_SERVER__{k.upper()}": v for k, v in server.items()}}
        done = run_gateway(["serve"], env)
        assert done.returncode != 0  # never got to listen
        return done.stderr

    warned = [line for line in serve(host="192.0.2.1").splitlines() if "without TLS" in line]
    assert len(warned) == 1 and "tls_cert" in warned[0]
    assert "without TLS" not in serve(host="127.0.0.1")
    assert "without TLS" not in serve(host="192.0.2.1", trusted_proxies='["10.0.0.0/8"]')
