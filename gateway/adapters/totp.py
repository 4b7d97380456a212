"""RFC 6238 codes (30 s, 6 digits, +/-1 step) via pyotp, and recovery codes."""

import hmac
import re
import secrets
from datetime import datetime

import pyotp

ISSUER = "Packetra"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
_RECOVERY = re.compile(f"[{_ALPHABET}]{{5}}-[{_ALPHABET}]{{5}}")


class PyotpCodes:
    def new_secret(self) -> str:
        return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends

    def uri(self, secret: str, label: str) -> str:
        # The label is the account id, not the email: authenticator apps sync to clouds.
        return pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER)

    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        """The time step the code belongs to (now, or one step either side), or None."""
        code = code.strip().replace(" ", "")
        if len(code) != 6 or not (code.isascii() and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        base = totp.timecode(now)
        for offset in (0, -1, 1):
            if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
                return base + offset
        return None

    def looks_like_recovery_code(self, code: str) -> bool:
        return _RECOVERY.fullmatch(code.strip().lower()) is not None

    def recovery_codes(self, count: int = 10) -> list[str]:
        def one() -> str:
            raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
            return f"{raw[:5]}-{raw[5:]}"

        return [one() for _ in range(count)]
