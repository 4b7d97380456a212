def N_(message: str) -> str:  # gettext's name for "mark, do not translate"
    """Marks a message for extraction (gateway/locale/messages.pot) where it is written;
    it is translated where a customer is shown it (gateway.i18n)."""
    return message


class DomainError(Exception):
    """A rule of the model was broken by the input; the message is safe to show."""


class InvalidInput(DomainError):
    """`detail` may name values (`"must be at least %(n)s characters", n=10`): the
    message shows them filled in; a translation (the template, `N_`-marked) too."""

    def __init__(self, field: str, detail: str, **values: object) -> None:
        text = detail % values if values else detail
        super().__init__(f"{field}: {text}")
        self.field = field
        self.detail = text
        self.template = detail
        self.values = values
