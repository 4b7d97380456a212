"""The form of public ids (`inv_`, `acc_`, `evt_`, `whe_` + 26 characters of the
alphabet in `gateway.services.ids`), shared by the OpenAPI document and the checks of ids
given as filters and cursors."""

import re

from gateway.domain.errors import InvalidInput

ID_CHARS = "[0-9a-hjkmnp-tv-z]{26}"


def id_pattern(prefix: str) -> str:
    return f"^{prefix}{ID_CHARS}$"


def checked_id(value: str | None, prefix: str, field: str) -> str | None:
    """`value` when it has the form of an id with this prefix; None stays None."""
    if value is not None and not re.fullmatch(f"{prefix}{ID_CHARS}", value):
        raise InvalidInput(field, f"must be an id of the form {prefix}... "
                                  f"({prefix} and 26 lower-case letters and digits)")
    return value
