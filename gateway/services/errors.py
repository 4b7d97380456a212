from gateway.domain.errors import DomainError, InvalidInput


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class Conflict(DomainError):
    pass


class Unauthorized(DomainError):
    pass


class UnconfirmedEmail(Unauthorized):
    """The right password for an account whose address is not confirmed yet. Answered
    exactly like a wrong password, so a login never tells whether an address has an
    account; the caller mails a new confirmation link instead."""

    def __init__(self, detail: str, account_id: str) -> None:
        super().__init__(detail)
        self.account_id = account_id


class Forbidden(DomainError):
    pass


class ServiceUnavailable(DomainError):
    def __init__(self, detail: str, retry_after_seconds: float = 30) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class TooManyRequests(DomainError):
    def __init__(self, detail: str, retry_after_seconds: float) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


__all__ = [
    "Conflict", "DomainError", "Forbidden", "InvalidInput", "NotFound",
    "ServiceUnavailable", "TooManyRequests", "Unauthorized", "UnconfirmedEmail",
]
