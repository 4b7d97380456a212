"""What an integrator may attach to an invoice: a documented schema of non-personal keys.

Metadata travels in clear in webhook event bodies (signed as they are sent) and is kept
with the billing records, so it may not carry personal data. Only these keys are
accepted, each an opaque identifier (letters, digits and `._:/-`, no spaces, no `@`: no
name, email or address fits) or a small integer. docs/privacy.md lists them."""

import re

KEYS: dict[str, str] = {
    "plan": "the plan bought (a plan name of [plans])",
    "reference": "the integrator's own order or contract id",
    "product": "a product or SKU code",
    "period": "the billing period, e.g. 2026-06 or monthly",
    "quantity": "how many (an integer)",
    "credit_applied": "the account credit that paid the rest of the price, e.g. 4.80 "
                      "(set by the gateway, docs/credit.md)",
}
VALUE_CHARS = "[A-Za-z0-9._:/-]{1,100}"
_TOKEN = re.compile(VALUE_CHARS)


def metadata_problem(metadata: dict[str, object]) -> str | None:
    """None when `metadata` fits the schema, else one line saying what does not."""
    for key, value in metadata.items():
        if key not in KEYS:
            return (f"key {key!r} is not accepted: metadata may hold only "
                    f"{', '.join(sorted(KEYS))} (no personal data; see docs/privacy.md)")
        if key == "quantity":
            if not isinstance(value, int) or isinstance(value, bool) \
                    or not 0 <= value <= 1_000_000:
                return "quantity must be an integer from 0 to 1000000"
        elif not isinstance(value, str) or not _TOKEN.fullmatch(value):
            return (f"{key} must be 1 to 100 letters, digits or ._:/- "
                    "(an identifier, never personal data)")
    return None
