"""Table definitions (SQLAlchemy Core). Personal fields are ciphertext columns (`*_ct`)."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)

from gateway.adapters.db.types import BaseUnits, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Autoincrement integer keys are internal only; public ids are random and prefixed.
_BigId = BigInteger().with_variant(Integer, "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email_index", String(64), nullable=False, unique=True),
    Column("email_ct", LargeBinary, nullable=False),
    Column("display_name_ct", LargeBinary),
    Column("company_ct", LargeBinary),
    Column("password_hash", String(255), nullable=False),
    Column("datacenter", String(40)),
    Column("currency", String(3)),
    Column("policy_version", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    # Two-factor authentication: the secret is personal data (encrypted); set while
    # pending, enabled once a first code confirms it; the last accepted time step
    # refuses a code's replay.
    Column("totp_secret_ct", LargeBinary),
    Column("totp_enabled_at", UTCDateTime),
    Column("totp_last_step", BigInteger),
    Column("email_verified_at", UTCDateTime),
    # Until then the link mailed to the previous address undoes the last email change,
    # and no further change is accepted (it would leave that link nothing to undo).
    Column("email_undo_until", UTCDateTime),
    # Deletion: requested by the customer, carried out by retention once due; afterwards
    # the row is a tombstone that only keeps the billing records attached.
    Column("deletion_due_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
    # Prepaid time: the plan renewed, the coin last paid with, the end of the time paid
    # for, the billing state last announced (active | grace | suspended), reminders on.
    Column("plan", String(100)),
    Column("renewal_coin", String(10)),
    Column("paid_until", UTCDateTime, index=True),
    Column("paid_since", UTCDateTime),  # start of the unbroken run (calendar months)
    Column("billing_state", String(20)),
    Column("renewal_reminders", Boolean, nullable=False, server_default=true()),
    # Accounts that never paid and stop logging in are deleted after [retention]
    # inactive_days, with a notice mailed a week before (inactivity_notice_at).
    Column("last_login_at", UTCDateTime),
    Column("inactivity_notice_at", UTCDateTime),
    # The customer objects to optional processing: no optional notices are mailed.
    Column("optional_processing_objected_at", UTCDateTime),
    # The language the customer last chose (gateway.i18n.LOCALES): their mails use it.
    Column("language", String(16)),
)

# One renewal invoice per account and period (the period is named by the `paid_until` it
# renews): the unique key is what keeps two instances, a restart or a clock jump from
# ever creating a second one. The reminder columns make each mail go out once.
renewals = Table(
    "renewals",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("invoice_id", String(40), ForeignKey("invoices.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("first_reminder_at", UTCDateTime),
    Column("second_reminder_at", UTCDateTime),
    UniqueConstraint("account_id", "period_end", name="uq_renewals_account_id_period_end"),
)

# What each settled plan invoice paid for: [starts_at, ends_at) of its account's time.
# One row per invoice: an invoice extends the account once, whatever is replayed.
paid_periods = Table(
    "paid_periods",
    metadata,
    Column("invoice_id", String(40), ForeignKey("invoices.id"), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("plan", String(100), nullable=False),
    Column("periods", Integer, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Who read a customer's personal data, when and why: service API keys and the CLI.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),  # key_... or cli:<user>
    Column("account_id", String(40), nullable=False, index=True),
    Column("action", String(40), nullable=False),
    Column("fields", JSON, nullable=False),
    Column("reason", String(200)),  # rows from before 0012a only; see reason_ct
    Column("reason_ct", LargeBinary),  # why, encrypted like personal fields
)

# Policy-change notices already mailed, so an interrupted run resumes without repeats.
policy_notices = Table(
    "policy_notices",
    metadata,
    Column("account_id", String(40), primary_key=True),
    Column("version", String(40), primary_key=True),
    Column("sent_at", UTCDateTime, nullable=False),
)

# Failed logins per email, keyed by the email's blind index (never the email), so unknown
# and known addresses are throttled alike.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# The only table that holds an IP address (encrypted: read only for security review and
# the customer's export); purged after [retention] security_log_days.
security_log = Table(
    "security_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(40), index=True),  # null: a login for no known account
    Column("event", String(40), nullable=False),
    Column("ip", String(45)),  # rows from before 0012a only; see ip_ct
    Column("ip_ct", LargeBinary),
    Column("at", UTCDateTime, nullable=False, index=True),
)

# Legal requests for customers' data, kept by the operator (`gateway legal ...`). The
# customers concerned see an entry in /account and their export once notification is
# allowed; until the operator lifts the hold it is withheld from them.
legal_requests = Table(
    "legal_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("summary_ct", LargeBinary, nullable=False),  # encrypted, bound to the id
    Column("notify_allowed", Boolean, nullable=False),
    Column("hold_lifted_at", UTCDateTime),
    # When the mail telling the customers was queued: once per request (0016l).
    Column("notice_queued_at", UTCDateTime),
    Column("recorded_by", String(100), nullable=False),  # cli:<user>
    Column("created_at", UTCDateTime, nullable=False),
)

legal_request_accounts = Table(
    "legal_request_accounts",
    metadata,
    Column("request_id", String(40), ForeignKey("legal_requests.id"), primary_key=True),
    Column("account_id", String(40), primary_key=True, index=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("code_hash", String(255), nullable=False),  # argon2id, like passwords
    Column("used_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),  # the JWT's jti
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime),  # for the idle timeout
    Column("revoked_at", UTCDateTime),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

derivation_counters = Table(
    "derivation_counters",
    metadata,
    # One counter per address space (one xpub, one view-only wallet), not per coin:
    # coins sharing a key (ETH and its tokens) draw from one counter.
    Column("space", String(100), primary_key=True),
    Column("next_index", Integer, nullable=False),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("coin", String(10), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("price_currency", String(3), nullable=False),
    Column("rate_value", String(40), nullable=False),
    Column("rate_source", String(200), nullable=False),
    Column("rate_locked_at", UTCDateTime, nullable=False),
    Column("amount_due", BaseUnits, nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("confirmations_required", Integer, nullable=False),
    Column("tolerance_basis_points", Integer, nullable=False),
    Column("accept_late_payments", Boolean, nullable=False),
    Column("address_space", String(100), nullable=False),
    Column("derivation_index", Integer, nullable=False),
    Column("address", String(120), nullable=False),
    Column("match_key", LargeBinary, nullable=False),
    Column("payment_uri", String(300), nullable=False),
    Column("status", String(20), nullable=False),
    Column("exception", String(40)),
    Column("metadata", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("monitoring_until", UTCDateTime, nullable=False),
    Column("settled_at", UTCDateTime),
    UniqueConstraint("address_space", "derivation_index",
                     name="uq_invoices_address_space_derivation_index"),
    Index("ix_invoices_coin_match_key", "coin", "match_key"),
    Index("ix_invoices_status_expires_at", "status", "expires_at"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("coin", String(10), nullable=False),
    Column("txid", String(100), nullable=False),
    Column("output_index", Integer, nullable=False),
    Column("invoice_id", String(40), ForeignKey("invoices.id"), nullable=False, index=True),
    Column("amount", BaseUnits, nullable=False),
    Column("block_hash", String(100)),
    Column("block_height", Integer),
    Column("status", String(20), nullable=False),  # pending | confirmed | reverted
    Column("seen_at", UTCDateTime, nullable=False),
    # Header time of the block the payment was first seen in (None: first seen in the
    # mempool); evidence of when it was paid if the gateway was down at the time.
    Column("block_time", UTCDateTime),
    # A lock: the payment may not count before this height or time (Monero unlock_time).
    Column("lock_height", Integer),
    Column("lock_time", UTCDateTime),
    UniqueConstraint("coin", "txid", "output_index", name="uq_payments_coin_txid_output"),
    Index("ix_payments_coin_block_hash", "coin", "block_hash"),
    Index("ix_payments_coin_block_height", "coin", "block_height"),
    Index("ix_payments_coin_lock_height", "coin", "lock_height"),
    Index("ix_payments_coin_lock_time", "coin", "lock_time"),
)

# An approved refund whose payment the watcher looks for at the customer's address
# (gateway/domain/refund_chain.py). `address_space`: the follower that watches it.
refund_watches = Table(
    "refund_watches",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("refund_id", String(40), nullable=False, unique=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("coin", String(10), nullable=False),
    Column("address_space", String(100), nullable=False),
    # The customer's address in another form (its scriptPubKey, its EVM address): as
    # personal as the address itself, so encrypted (bound to the refund) and found by a
    # keyed hash; both erased with the refund's address.
    Column("match_key_ct", LargeBinary),
    Column("match_index", String(64)),
    Column("amount", BaseUnits, nullable=False),
    Column("confirmations_required", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # waiting | sent | completed
    Column("txid", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Index("ix_refund_watches_coin_match_index", "coin", "match_index"),
    Index("ix_refund_watches_space_state", "address_space", "state"),
)

# Outputs seen paying a watched refund address, kept like `payments` (reorgs move them
# back to the mempool, a replaced transaction reverts them).
refund_outputs = Table(
    "refund_outputs",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("refund_id", String(40), nullable=False, index=True),
    Column("coin", String(10), nullable=False),
    Column("txid", String(100), nullable=False),
    Column("output_index", Integer, nullable=False),
    Column("amount", BaseUnits, nullable=False),
    Column("block_hash", String(100)),
    Column("block_height", Integer),
    Column("status", String(20), nullable=False),  # pending | confirmed | reverted
    Column("seen_at", UTCDateTime, nullable=False),
    UniqueConstraint("coin", "txid", "output_index", name="uq_refund_outputs_coin_txid_output"),
    Index("ix_refund_outputs_coin_block_hash", "coin", "block_hash"),
)

chain_cursors = Table(
    "chain_cursors",
    metadata,
    # One cursor per feed: a node a follower follows, for one or more coins.
    Column("feed", String(100), primary_key=True),
    Column("height", Integer, nullable=False),
    Column("hash", String(100), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # While the follower's node catches up (a Monero wallet recreated from its keys being
    # given its subaddresses and rescanning): what it reports, and since when.
    Column("catch_up", String(300), nullable=True),
    Column("catch_up_since", UTCDateTime, nullable=True),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret_ct", LargeBinary, nullable=False),
    # During a rotation the previous secret still signs, until it expires.
    Column("previous_secret_ct", LargeBinary),
    Column("previous_secret_expires_at", UTCDateTime),
    Column("event_types", JSON, nullable=False),  # empty list: every type
    Column("description", String(500), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
)

events = Table(
    "events",
    metadata,
    Column("seq", _BigId, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(60), nullable=False),
    Column("account_id", String(40), index=True),
    Column("body", Text, nullable=False),  # the exact bytes that are signed and sent
    Column("created_at", UTCDateTime, nullable=False),
    # Delivery order (gateway.domain.events.ordering): the subject whose events go one at
    # a time in commit order, and the other lane whose earlier events go first.
    Column("lane", String(40)),
    Column("after_lane", String(40)),
    Index("ix_events_lane_seq", "lane", "seq"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_id", String(40), ForeignKey("events.id"), nullable=False, index=True),
    Column("endpoint_id", String(40), ForeignKey("webhook_endpoints.id"), nullable=False),
    Column("status", String(20), nullable=False),  # pending | succeeded | failed | disabled
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # 0: urgent (claimed before everything else that is due), 1: the rest.
    Column("priority", SmallInteger, nullable=False, server_default="1"),
    Index("ix_deliveries_status_priority_next_attempt_at",
          "status", "priority", "next_attempt_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(60), primary_key=True),  # API key id or account id
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the request
    Column("state", String(10), nullable=False),  # running | done
    Column("owner", String(40), nullable=False),  # token of the request that holds it
    Column("invoice_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", String(200)),
)

# Outgoing mail waiting for the SMTP server: recipient, subject and body are ciphertext
# (they hold the email and reset links), bound to the row id. A row is deleted once sent,
# or dropped after [mail] max_age_hours; the blind index of the recipient lets an
# account's erasure take its queued mail with it.
mail_queue = Table(
    "mail_queue",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("recipient_index", String(64), nullable=False, index=True),
    Column("recipient_ct", LargeBinary, nullable=False),
    Column("subject_ct", LargeBinary, nullable=False),
    Column("body_ct", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False, index=True),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    # An inactivity notice names its account: a notice the queue drops undelivered
    # clears the account's `inactivity_notice_at` in the same transaction, so no account
    # is deleted without a notice that reached the SMTP server.
    Column("notice_account_id", String(40), index=True),
)

# Work a retention run owes and retries at every run until done, kept in the database so
# a restart forgets nothing: `flush` (erased data still in the database files).
retention_owed = Table(
    "retention_owed",
    metadata,
    Column("work", String(40), primary_key=True),
    Column("since", UTCDateTime, nullable=False),
)

# The staff console (gateway/staff): its members, their sessions, and what they did.
staff_members = Table(
    "staff_members",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # finance | support | admin
    Column("password_hash", String(255), nullable=False),
    Column("totp_secret_ct", LargeBinary),  # set at enrolment, before it is confirmed
    Column("totp_enabled_at", UTCDateTime),
    Column("totp_last_step", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("staff_id", String(40), ForeignKey("staff_members.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("enrolled", Boolean, nullable=False),  # False: may only enrol TOTP
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# The security log of staff actions: who (name, kept after the member is removed), what
# (action and its subject: an invoice, event, account or key id), when, from where
# (encrypted like the security log's addresses, bound to the member's name; none for a
# failed login at a name that is no member's).
staff_log = Table(
    "staff_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("staff", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(100)),
    Column("ip_ct", LargeBinary),  # 0019s: was `ip`, in clear
    Column("at", UTCDateTime, nullable=False, index=True),
)

# Account credit (docs/credit.md): append-only, the balance is the sum of `amount` (minor
# units of `currency`, signed). One entry per cause and account: the unique key is what
# makes a payment credited once, a spend taken once, whatever instance or retry writes it.
# A payment's entry keeps how its coins became money (coin, output, base units, rate).
credit_entries = Table(
    "credit_entries",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("cause", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("invoice_id", String(40), index=True),
    Column("refund_id", String(40), index=True),
    Column("coin", String(10)),
    Column("txid", String(100)),
    Column("output_index", Integer),
    Column("crypto_amount", BaseUnits),
    Column("decimals", SmallInteger),
    Column("rate", String(50)),
    Column("rate_source", String(200)),
    Column("reason", String(20)),
    Column("note", Text),
    Column("staff_id", String(40)),
    UniqueConstraint("account_id", "cause", name="uq_credit_entries_account_id_cause"),
)

# Refunds (docs/refunds.md): credit a customer asked back to an address of theirs. The
# address and Monero's tx key are personal data: encrypted, bound to the refund's id, and
# erased by retention (`erased_at`) after [retention] payment_records_days. `quote_*`:
# fixed by the last approval (base units at the median rate of that moment) with what the
# operator's wallet signs and sends (PSBT, payment URI) and the outpoints a PSBT spends.
refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("coin", String(10), nullable=False),
    Column("address_ct", LargeBinary),
    Column("approvals_needed", SmallInteger, nullable=False),
    Column("refusal_reason", Text),
    Column("refused_by", String(40)),
    Column("crypto_amount", BaseUnits),
    Column("rate", String(50)),
    Column("uri_ct", LargeBinary),  # the payment request names the address: encrypted
    Column("psbt_ct", LargeBinary),  # so does the PSBT's output
    Column("fee", BaseUnits),
    Column("spends", JSON),  # [[txid, output index], ...]
    Column("change_index", Integer),
    Column("txid", String(100)),
    Column("tx_key_ct", LargeBinary),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("erased_at", UTCDateTime),
)

# One row per approval: the primary key records one approval per member, whatever two
# requests or instances do at once.
refund_approvals = Table(
    "refund_approvals",
    metadata,
    Column("refund_id", String(40), ForeignKey("refunds.id"), primary_key=True),
    Column("staff_id", String(40), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Vouchers (docs/vouchers.md): batches of prepaid codes, each code kept only as a keyed
# hash (HMAC with the index key), never in clear. A code is redeemed once: one
# conditional UPDATE of its row (`redeemed_at IS NULL`), whatever instances race.
voucher_batches = Table(
    "voucher_batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(40)),  # staff_members.id; null from the CLI
    Column("count", Integer, nullable=False),
    Column("value_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("plan", String(100)),
    Column("periods", SmallInteger, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("label", String(200), nullable=False),
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("batch_id", String(40), ForeignKey("voucher_batches.id"), nullable=False,
           index=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("redeemed_at", UTCDateTime),
    Column("redeemed_by", String(40)),
)

# Cash by mail (docs/cash.md): one-time payment tokens. Never the token itself: its keyed
# hash (`token_hash`, a blind index). The row is the only link between an envelope and
# its account; retention deletes it `[cash] keep_used_days` after use, or once unused past
# `expires_at`, and an account's erasure deletes its rows. `note_ct`: staff's note,
# encrypted and bound to the row's id.
cash_tokens = Table(
    "cash_tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(40), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("used_at", UTCDateTime, index=True),
    Column("amount_minor", BigInteger),
    Column("currency", String(3)),
    Column("staff_id", String(40)),
    Column("note_ct", LargeBinary),
)
