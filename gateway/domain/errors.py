def N_(message: str) -> str:  # gettext's name for "mark, do not translate"
    """Marks a message for extraction (gateway/locale/messages.pot) where it is written;
    it is translated where a customer is shown it (gateway.i18n)."""
    return message


class DomainError(Exception):
    """A rule of the model was broken by the input; the message is safe to show."""


class InvalidInput(DomainError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
