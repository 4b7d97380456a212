class DomainError(Exception):
    """A rule of the model was broken by the input; the message is safe to show."""


class InvalidInput(DomainError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
