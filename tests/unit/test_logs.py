import logging

import pytest

from gateway.logs import RedactingFilter, redact


def test_redaction_masks_personal_data_and_secrets() -> None:
    line = redact(
        "login alice.smith+x@example.org with gk_abcdefghijklmnop and whsec_QUJDREVGR0hJSktM "
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln rpc http://user:pass@127.0.0.1:9332"
    )
    for secret in ("alice.smith", "gk_abcdefghijklmnop", "QUJDREVGR0hJSktM", "eyJhbGci",
                   "user:pass"):
        assert secret not in line


def test_ip_addresses_never_reach_a_log_line() -> None:
    line = redact("Error handling request from 203.0.113.9 and from 2001:db8::1 or ::1, "
                  "fe80:0:0:0:200:f8ff:fe21:67cf; LTC block 1.2.3 at height 250, 12:05")
    assert "203.0.113.9" not in line and "2001:db8::1" not in line
    assert "fe80:0:0:0:200:f8ff:fe21:67cf" not in line and " ::1" not in line
    assert "1.2.3" in line and "12:05" in line and "250" in line


def test_filter_applies_to_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO):
            logger.info("user %s", "bob@example.org")
            try:
                raise ValueError("bad email carol@example.org")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    text = caplog.text
    assert "bob@example.org" not in text and "carol@example.org" not in text
    assert "<email>" in text and "ValueError" in text


def test_urls_keep_only_scheme_host_and_port() -> None:
    from gateway.logs import redact

    assert redact("url='https://mainnet.infura.example/v3/0123abcd', x") == \
        "url='https://mainnet.infura.example', x"
    assert redact("POST https://node.example:8545/?apikey=s3cr3t failed") == \
        "POST https://node.example:8545 failed"
    assert redact("wss://eth.example/ws/KEY") == "wss://eth.example"
    assert redact("GET /v1/invoices/inv_1 200") == "GET /v1/invoices/inv_1 200"
