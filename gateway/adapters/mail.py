"""Outgoing mail through the operator's SMTP server (aiosmtplib)."""

import ipaddress
import logging
from email.message import EmailMessage

import aiosmtplib

log = logging.getLogger(__name__)


class SmtpMailer:
    def __init__(self, host: str, port: int, *, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = False, tls: bool = False,
                 timeout: float = 30) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._tls = tls
        self._timeout = timeout

    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        if not (self._starttls or self._tls or _loopback(self._host)):
            # The configuration refuses this too; never hand a mail over in clear.
            log.warning("mail %r not sent: plain SMTP only to a loopback host", subject)
            return False
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message, hostname=self._host, port=self._port, username=self._username,
                password=self._password, start_tls=self._starttls or None,
                use_tls=self._tls, timeout=self._timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The address is not logged: only that a mail could not go out.
            log.warning("mail %r could not be sent (%s)", subject, type(exc).__name__)
            return False
        return True


def _loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class NoMailer:
    """No [smtp] configured: nothing is sent, and that is said once per kind of mail."""

    async def send(self, to: str, subject: str, body: str,
                   notice_for: str | None = None) -> bool:
        log.warning("mail %r not sent: no [smtp] section is configured", subject)
        return False
