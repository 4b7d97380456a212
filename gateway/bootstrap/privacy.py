"""Privacy: export, correction and deletion, retention (purges, erasures, the deletion
ledger), the legal-requests register and policy notices."""

from dataclasses import dataclass
from datetime import timedelta

from gateway.adapters.db.engine import erase_residue
from gateway.adapters.deletion_ledger import FileDeletionLedger
from gateway.bootstrap.accounts import AccountsArea
from gateway.bootstrap.core import Core, Credentials
from gateway.bootstrap.mail import MailArea
from gateway.config import Settings
from gateway.services.legal import LegalNotices, LegalRegisterService
from gateway.services.policy_notices import PolicyNoticeService
from gateway.services.privacy import PrivacyService
from gateway.services.retention import RetentionPeriods, RetentionService


@dataclass(frozen=True, kw_only=True)
class PrivacyArea:
    privacy: PrivacyService
    retention: RetentionService
    legal: LegalRegisterService
    notices: PolicyNoticeService


def retention_periods(settings: Settings) -> RetentionPeriods:
    ret = settings.retention
    return RetentionPeriods(
        security_log=timedelta(days=ret.security_log_days),
        idempotency_keys=timedelta(hours=ret.idempotency_hours),
        delivery_logs=timedelta(days=ret.delivery_log_days),
        mail_queue=timedelta(hours=settings.mail.max_age_hours),
        audit_log_after_deletion=timedelta(days=ret.audit_log_days_after_deletion),
        login_throttle=timedelta(hours=ret.login_throttle_hours),
        disabled_endpoint_events=timedelta(days=ret.disabled_endpoint_days),
        inactive_unpaid=timedelta(days=ret.inactive_unpaid_days),
        inactivity_notice=timedelta(days=ret.inactivity_notice_days),
        inactive_lapsed=timedelta(days=ret.inactive_lapsed_days),
        legal_requests=timedelta(days=ret.legal_request_days),
        deletion_ledger=timedelta(days=ret.deletion_ledger_days),
        refund_addresses=timedelta(days=ret.refund_address_days),
        cash_tokens_after_use=timedelta(days=settings.cash.keep_used_days))


def _ledger(settings: Settings) -> FileDeletionLedger | None:
    path = settings.backup.ledger_path()
    return FileDeletionLedger(path) if path is not None else None


def build_privacy(core: Core, creds: Credentials, accounts: AccountsArea,
                  mail: MailArea) -> PrivacyArea:
    settings, uow, clock = core.settings, core.make_uow, core.clock
    pages = f"{settings.server.public_url}{settings.server.path_prefix}"
    version = settings.privacy.policy_version
    engine = core.engine
    return PrivacyArea(
        privacy=PrivacyService(
            uow, passwords=creds.passwords, blind_index=core.index,
            two_factor=accounts.two_factor, clock=clock,
            deletion_grace=timedelta(days=settings.retention.deletion_grace_days),
            policy_version=version, throttle=creds.throttle, reader=core.reader),
        retention=RetentionService(
            uow, clock, periods=retention_periods(settings),
            flush=lambda: erase_residue(engine),
            mailer=mail.queued if mail.configured else None,
            login_url=accounts.links.login, ledger=_ledger(settings),
            catalogs=core.catalogs),
        # The notification mail is queued in the transaction that allows it (the unit
        # of work holds the mail queue), and sent by the instances' mail senders.
        legal=LegalRegisterService(
            uow, clock, reader=core.reader,
            notices=LegalNotices(f"{pages}/account", core.catalogs)
            if mail.configured else None),
        # Policy notices are sent by an operator's batch command that paces itself and
        # records each mail the SMTP server accepted, so it mails directly (OPERATIONS.md).
        notices=PolicyNoticeService(uow, mail.direct, clock, version, f"{pages}/account",
                                    core.catalogs))
