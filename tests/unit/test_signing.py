import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks import signing
from webhooks.retry import Outcome, RetryPolicy, classify, parse_retry_after


def test_our_signature_verifies_with_the_standardwebhooks_package() -> None:
    secret = signing.new_secret()
    body = b'{"type":"invoice.settled","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    headers = signing.headers([secret], "evt_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_two_secrets_both_verify_during_rotation() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b"{}"
    headers = signing.headers([new, old], "evt_2", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_secret_format() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    with pytest.raises(ValueError):
        signing.new_secret(16)


def test_own_verify_rejects_stale_and_forged() -> None:
    secret = signing.new_secret()
    now = int(time.time())
    headers = signing.headers([secret], "evt_3", now - 3600, b"{}")
    with pytest.raises(signing.SignatureError, match="tolerance"):
        signing.verify(secret, headers, b"{}", now)
    headers = signing.headers([secret], "evt_3", now, b"{}")
    signing.verify(secret, headers, b"{}", now)
    with pytest.raises(signing.SignatureError):
        signing.verify(secret, headers, b"{ }", now)


def test_retry_schedule_and_exhaustion() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy()
    delays = [policy.next_attempt(n, now) for n in range(1, 9)]
    assert [d - now for d in delays[:7] if d] == [
        timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
        timedelta(hours=5), timedelta(hours=10), timedelta(hours=10)]
    assert delays[7] is None
    jittered = policy.next_attempt(2, now, rand=lambda: 1.0)
    assert jittered == now + timedelta(minutes=5) * 1.1


def test_retry_after_is_honoured_within_bounds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy()
    assert policy.next_attempt(1, now, timedelta(seconds=120)) == now + timedelta(seconds=120)
    assert policy.next_attempt(1, now, timedelta(days=5)) == now + timedelta(hours=10)
    assert parse_retry_after("30", now) == timedelta(seconds=30)
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == timedelta(minutes=1)
    assert parse_retry_after("soon", now) is None


def test_classification() -> None:
    assert classify(200) is Outcome.SUCCEEDED
    assert classify(204) is Outcome.SUCCEEDED
    assert classify(301) is Outcome.RETRY
    assert classify(410) is Outcome.DISABLE
    assert classify(500) is Outcome.RETRY
    assert classify(None) is Outcome.RETRY
