"""Two-factor authentication: TOTP codes work once, recovery codes work once."""

from datetime import UTC, datetime

import pyotp

from tests.e2e.conftest import StackFactory


def code(secret: str, offset: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC), counter_offset=offset)


async def test_totp_and_recovery_codes(make_stack: StackFactory) -> None:
    stack = await make_stack()
    await stack.signup("2fa@example.org", "two factor pw 1")
    token = await stack.login("2fa@example.org", "two factor pw 1")

    started = await stack.api.ok("POST", "/v1/me/totp", {"current_password": "two factor pw 1"},
                                 token)
    secret = started["secret"]
    stack.secrets.add(secret)
    assert started["otpauth_uri"].startswith("otpauth://totp/Packetra:acc_")
    assert f"secret={secret}" in started["otpauth_uri"]
    assert "2fa@example.org" not in started["otpauth_uri"]
    assert started["qr_svg"].startswith("<svg")

    wrong = await stack.api.call("POST", "/v1/me/totp/confirm", {"code": "000000"}, token)
    assert wrong[0] == 422
    confirmed = await stack.api.ok("POST", "/v1/me/totp/confirm", {"code": code(secret)}, token)
    recovery = confirmed["recovery_codes"]
    assert len(recovery) == 10 and len(set(recovery)) == 10
    stack.secrets.update(recovery)

    creds = {"email": "2fa@example.org", "password": "two factor pw 1"}
    missing = await stack.api.call("POST", "/v1/sessions", creds)
    assert missing[0] == 401 and "two-factor code is required" in missing[1]["detail"]
    # The confirmation used the current step: that code is spent, the next step's works.
    replay = await stack.api.call("POST", "/v1/sessions", {**creds, "totp_code": code(secret)})
    assert replay[0] == 401
    ahead = await stack.api.call("POST", "/v1/sessions", {**creds, "totp_code": code(secret, 1)})
    assert ahead[0] == 201
    stack.secrets.add(ahead[1]["token"])
    again = await stack.api.call("POST", "/v1/sessions", {**creds, "totp_code": code(secret, 1)})
    assert again[0] == 401 and "already used" in again[1]["detail"]

    first = await stack.api.call("POST", "/v1/sessions", {**creds, "totp_code": recovery[0]})
    assert first[0] == 201
    stack.secrets.add(first[1]["token"])
    spent = await stack.api.call("POST", "/v1/sessions", {**creds, "totp_code": recovery[0]})
    assert spent[0] == 401

    wrong_pw = await stack.api.call("POST", "/v1/sessions", {
        "email": "2fa@example.org", "password": "not the password", "totp_code": code(secret)})
    unknown = await stack.api.call("POST", "/v1/sessions", {
        "email": "nobody@example.org", "password": "not the password",
        "totp_code": code(secret)})
    assert wrong_pw[0] == unknown[0] == 401 and wrong_pw[1] == unknown[1]

    pw = {"current_password": "two factor pw 1"}
    assert (await stack.api.call("DELETE", "/v1/me/totp", {**pw, "code": "123456"}, token)
            )[0] == 422
    assert (await stack.api.call("DELETE", "/v1/me/totp", {**pw, "code": recovery[1]}, token)
            )[0] == 204
    plain = await stack.api.call("POST", "/v1/sessions", creds)
    assert plain[0] == 201
    stack.secrets.add(plain[1]["token"])

    if stack.db_url.startswith("sqlite"):
        started = await stack.api.ok("POST", "/v1/me/totp", pw, token)  # pending secret
        stack.secrets.add(started["secret"])
        stack.gateway.stop()
        raw = stack.raw_database()
        assert started["secret"].encode() not in raw and secret.encode() not in raw
        assert not any(c.encode() in raw for c in recovery)
