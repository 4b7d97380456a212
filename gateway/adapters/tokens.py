"""Session JWTs and API keys."""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import jwt

from gateway.adapters.fields import FieldCipher, FieldCipherError, FieldRef
from gateway.services.api_keys import API_KEY_PREFIX
from gateway.services.errors import Unauthorized
from gateway.services.ports import SessionClaims

ALGORITHM = "HS256"


class SessionTokens:
    def __init__(self, key: bytes, issuer: str, audience: str = "packetra-gateway") -> None:
        if len(key) < 32:
            raise ValueError("session key must be at least 32 bytes")
        self._key = key
        self._issuer = issuer
        self._audience = audience

    def issue(self, account_id: str, session_id: str, now: datetime, expires_at: datetime) -> str:
        claims = {
            "sub": account_id,
            "jti": session_id,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "aud": self._audience,
            "iss": self._issuer,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def decode(self, token: str, now: datetime) -> SessionClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],  # pinned: never trust the header's alg
                audience=self._audience,
                issuer=self._issuer,
                # Time is checked below against the injected clock, not the wall clock.
                options={
                    "require": ["exp", "iat", "sub", "aud", "iss", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise Unauthorized("session token is not valid") from None
        # Checked against the injected clock too, so tests can move time.
        if int(claims["exp"]) <= int(now.timestamp()):
            raise Unauthorized("session token has expired")
        if int(claims["iat"]) > int(now.timestamp()) + 60:
            raise Unauthorized("session token is not valid yet")
        return SessionClaims(str(claims["sub"]), str(claims["jti"]))


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # 256 random bits: a fast hash is enough; a slow one would only cost every request.
    return hashlib.sha256(key.encode()).hexdigest()


class PurposeTokens:
    """Mailed links (password reset, email verification, email change): a JWT for one
    purpose, with a key derived for that purpose, bound to a fingerprint of what it may
    change. With a cipher, a link may also carry one value sealed with the data key
    (AES-256-GCM, bound to the purpose and account id): an email address never
    shows in a decoded link."""

    def __init__(self, session_key: bytes, issuer: str,
                 clock: Callable[[], datetime], purpose: str = "password-reset",
                 cipher: FieldCipher | None = None) -> None:
        self._key = hmac.new(session_key, purpose.encode(), hashlib.sha256).digest()
        self.AUDIENCE = f"packetra-{purpose}"
        self._issuer = issuer
        self._clock = clock
        self._cipher = cipher

    def issue(self, account_id: str, fingerprint: str, ttl: timedelta,
              sealed: str | None = None) -> str:
        now = self._clock()
        claims: dict[str, object] = {
            "sub": account_id, "fp": fingerprint, "aud": self.AUDIENCE, "iss": self._issuer,
            "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
        if sealed is not None:
            if self._cipher is None:
                raise ValueError(f"{self.AUDIENCE} tokens carry no sealed value")
            blob = self._cipher.encrypt(sealed, self._ref(account_id))
            claims["sv"] = base64.urlsafe_b64encode(blob).decode().rstrip("=")
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def open(self, token: str) -> tuple[str, str, str]:
        """(account id, fingerprint, the sealed value)."""
        account_id, fp = self.read(token)
        claims = jwt.decode(token, options={"verify_signature": False})  # verified by read
        raw = claims.get("sv")
        if not isinstance(raw, str) or self._cipher is None:
            raise Unauthorized("this link is not valid")
        try:
            blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            return account_id, fp, self._cipher.decrypt(blob, self._ref(account_id))
        except (ValueError, FieldCipherError):
            raise Unauthorized("this link is not valid") from None

    def _ref(self, account_id: str) -> FieldRef:
        # Links mailed before version 2 were bound to "<audience>:<account id>".
        return FieldRef(f"link.{self.AUDIENCE}", account_id, f"{self.AUDIENCE}:{account_id}")

    def read(self, token: str) -> tuple[str, str]:
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                audience=self.AUDIENCE, issuer=self._issuer,
                                options={"require": ["exp", "sub", "fp", "aud", "iss"],
                                         "verify_exp": False})
        except jwt.PyJWTError:
            raise Unauthorized("this link is not valid") from None
        if int(claims["exp"]) <= int(self._clock().timestamp()):
            raise Unauthorized("this link has expired; ask for a new one")
        return str(claims["sub"]), str(claims["fp"])
