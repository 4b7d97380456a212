"""Every encrypted column, and what its ciphertexts are bound to. The repositories take
their `FieldRef`s from here, and `gateway keys rotate-data` walks the same list: a column
added to a table but not here would be missed by a key rotation (a test compares this
list with the tables' `*_ct` columns)."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Table

from gateway.adapters.db.tables import (
    accounts,
    audit_log,
    cash_tokens,
    legal_requests,
    mail_queue,
    refund_watches,
    refunds,
    security_log,
    staff_log,
    staff_members,
    webhook_endpoints,
)
from gateway.adapters.fields import FieldRef


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: str
    # The column whose value the ciphertext is bound to: the row's id, or (for the logs,
    # whose ids are only known after the insert) the account the entry is about.
    record_column: str = "id"
    # Version 1's associated data, from the record (None: the record itself).
    legacy: Callable[[str], str] | None = None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    @property
    def ct(self) -> "Column[bytes]":
        return self.table.c[self.column]

    def ref(self, record: str | None) -> FieldRef:
        rec = "-" if record is None else record  # a log entry about no known account
        return FieldRef(self.name, rec, None if self.legacy is None else self.legacy(rec))


ACCOUNT_EMAIL = EncryptedColumn(accounts, "email_ct")
ACCOUNT_DISPLAY_NAME = EncryptedColumn(accounts, "display_name_ct")
ACCOUNT_COMPANY = EncryptedColumn(accounts, "company_ct")
ACCOUNT_TOTP = EncryptedColumn(accounts, "totp_secret_ct")
# Log entries are bound to their account, not their row: a reason or address moved to
# another entry of the same account says no more than swapping the entries' plain
# columns (time, event) would.
AUDIT_REASON = EncryptedColumn(audit_log, "reason_ct", "account_id",
                               lambda a: f"audit_log.reason:{a}")
SECURITY_IP = EncryptedColumn(security_log, "ip_ct", "account_id",
                              lambda a: f"security_log.ip:{a}")
# The staff console's client addresses, bound to the member (as the security log's are to
# the account): the row id is only known after the insert.
STAFF_LOG_IP = EncryptedColumn(staff_log, "ip_ct", "staff")
LEGAL_SUMMARY = EncryptedColumn(legal_requests, "summary_ct")
WEBHOOK_SECRET = EncryptedColumn(webhook_endpoints, "secret_ct")
WEBHOOK_PREVIOUS_SECRET = EncryptedColumn(webhook_endpoints, "previous_secret_ct")
MAIL_RECIPIENT = EncryptedColumn(mail_queue, "recipient_ct")
MAIL_SUBJECT = EncryptedColumn(mail_queue, "subject_ct")
MAIL_BODY = EncryptedColumn(mail_queue, "body_ct")
STAFF_TOTP = EncryptedColumn(staff_members, "totp_secret_ct")
# The customer's refund address and Monero's tx key, bound to the refund.
REFUND_ADDRESS = EncryptedColumn(refunds, "address_ct")
REFUND_TX_KEY = EncryptedColumn(refunds, "tx_key_ct")
# What the operator's wallet is given: both name the customer's address.
REFUND_URI = EncryptedColumn(refunds, "uri_ct")
REFUND_PSBT = EncryptedColumn(refunds, "psbt_ct")
# The watched form of the refund address (its scriptPubKey, hex), bound to the refund.
REFUND_MATCH_KEY = EncryptedColumn(refund_watches, "match_key_ct", "refund_id")
# Staff's note on a cash envelope, bound to the token's row (deleted with it).
CASH_NOTE = EncryptedColumn(cash_tokens, "note_ct")

ALL: tuple[EncryptedColumn, ...] = (
    ACCOUNT_EMAIL, ACCOUNT_DISPLAY_NAME, ACCOUNT_COMPANY, ACCOUNT_TOTP, AUDIT_REASON,
    SECURITY_IP, LEGAL_SUMMARY, WEBHOOK_SECRET, WEBHOOK_PREVIOUS_SECRET, MAIL_RECIPIENT,
    MAIL_SUBJECT, MAIL_BODY, STAFF_TOTP, STAFF_LOG_IP, REFUND_ADDRESS, REFUND_TX_KEY,
    REFUND_URI, REFUND_PSBT, REFUND_MATCH_KEY, CASH_NOTE,
)


def by_table() -> dict[str, tuple[EncryptedColumn, ...]]:
    """The encrypted columns grouped by table, tables in a fixed order."""
    grouped: dict[str, list[EncryptedColumn]] = {}
    for col in ALL:
        grouped.setdefault(col.table.name, []).append(col)
    return {name: tuple(cols) for name, cols in grouped.items()}

