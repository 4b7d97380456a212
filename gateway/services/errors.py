from gateway.domain.errors import DomainError, InvalidInput


class NotFound(DomainError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what


class Conflict(DomainError):
    pass


class Unauthorized(DomainError):
    pass


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
    "ServiceUnavailable", "TooManyRequests", "Unauthorized",
]
