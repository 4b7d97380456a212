"""Mail: the direct SMTP mailer, and the durable queue every request's mail goes
through, sent by a background sender with retries."""

from dataclasses import dataclass
from datetime import timedelta

from gateway.adapters.mail import NoMailer, SmtpMailer
from gateway.adapters.mail_queue import MailPolicy, MailSender, QueuedMailer, SqlMailQueue
from gateway.bootstrap.core import Core


@dataclass(frozen=True, kw_only=True)
class MailArea:
    direct: SmtpMailer | NoMailer  # batch commands that pace themselves
    queued: QueuedMailer | NoMailer  # everything a request causes
    sender: MailSender | None  # None without [smtp]: nothing can be sent

    @property
    def configured(self) -> bool:
        return self.sender is not None


def build_mail(core: Core) -> MailArea:
    smtp = core.settings.smtp
    if smtp is None:
        return MailArea(direct=NoMailer(), queued=NoMailer(), sender=None)
    direct = SmtpMailer(
        smtp.host, smtp.port, sender=smtp.from_, username=smtp.username,
        password=smtp.password.get_secret_value() if smtp.password else None,
        starttls=bool(smtp.starttls), tls=smtp.tls)
    queue = SqlMailQueue(core.engine, core.cipher, core.index)
    mail = core.settings.mail
    sender = MailSender(queue, direct, clock=core.clock, policy=MailPolicy(
        tuple(timedelta(seconds=s) for s in mail.retry_schedule_seconds),
        timedelta(hours=mail.max_age_hours)), on_outcome=core.metrics.mail)
    core.mail.connect(sender.wake)
    return MailArea(direct=direct, queued=QueuedMailer(queue, core.clock, sender.wake),
                    sender=sender)
