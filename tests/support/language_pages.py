"""For the browser tests of the languages (issue 32): one gateway stack and one mail server
for a whole module (the pages of seven languages on one stack: a stack per test would cost
more than the pages), and what a page in a language should say, read from the gateway's own
compiled catalogs (never typed into the tests: they follow the translators' work)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from email.header import decode_header, make_header
from email.message import Message
from functools import cache
from pathlib import Path

import aiohttp
from aiosmtpd.controller import Controller
from selenium.webdriver.remote.webdriver import WebDriver

from gateway.i18n import DEFAULT, Catalogs, direction, tag
from tests.e2e.conftest import DEFAULT_DB, Stack, _provisioning_key
from tests.support.databases import fresh_database
from tests.support.inbox import Inbox
from tests.support.inprocess import InProcessGateway
from tests.support.nodes import LitecoinRegtest, free_port
from tests.support.stack import Api, Receiver, gateway_env


@cache
def catalogs() -> Catalogs:
    return Catalogs.load()


def said(locale: str, message: str, **values: object) -> str:
    """`message` as a page or mail in `locale` says it. Fails while the catalog lacks it:
    a page that shows the English text in another language is not in that language."""
    text = catalogs().voice(locale).gettext(message, **values)
    if locale != DEFAULT:
        assert catalogs()(locale).gettext(message) != message, \
            f"{locale}: {message!r} is not translated"
    return text


def words(text: str) -> str:
    """Spaces as a browser's text gives them (French's no-break space before "?" too)."""
    return " ".join(text.split())


def in_language(browser: WebDriver, locale: str, css: str, message: str,
                **values: object) -> None:
    """The page is `locale`'s: its lang and dir, and the element `css` says `message`."""
    # Read in one go: without JavaScript the checkout page replaces itself now and then.
    where, lang, way, text = browser.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return [location.href, document.documentElement.lang, document.documentElement.dir,"
        " e ? e.innerText : null];", css)
    assert (lang, way) == (tag(locale), direction(locale)), where
    assert text is not None, (css, where)
    assert words(text) == words(said(locale, message, **values)), where


def subject_of(mail: Message) -> str:
    return str(make_header(decode_header(mail["Subject"])))


def text_of(mail: Message) -> str:
    return mail.get_payload(decode=True).decode()  # type: ignore[union-attr]


async def mail_titled(inbox: Inbox, address: str, subject: str, timeout: float = 10
                     ) -> Message:
    """The mail to `address` with this subject (other mails, a signup's, may come first)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in inbox.to(address) if subject_of(m) == subject]
        if found:
            return found[0]
        assert time.monotonic() < deadline, (subject, [subject_of(m) for m in inbox.to(address)])
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def module_inbox() -> Iterator[Inbox]:
    box = Inbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def module_stack(litecoin: LitecoinRegtest, tmp: Path, **env_extra: str
                       ) -> AsyncIterator[Stack]:
    """What `make_stack` builds (in-process gateway, fresh database, API key, receiver), for
    a module: with the same check at the end, no secret in the gateway's log."""
    http = aiohttp.ClientSession()
    receiver = Receiver()
    with fresh_database(DEFAULT_DB, tmp) as db_url:
        env = gateway_env(db_url, litecoin, free_port(), **env_extra)
        key = await _provisioning_key(env)
        gateway = InProcessGateway(env, tmp / "gateway.log")
        try:
            await gateway.start()
            await receiver.start()
            stack = Stack(gateway, Api(gateway.base, http), key, receiver, {}, litecoin,
                          db_url, tmp, {key})
            yield stack
        finally:
            await http.close()
            await gateway.stop()
            await receiver.stop()
    log = gateway.log()
    for secret in stack.all_secrets():
        assert secret not in log, "a secret or personal datum reached the gateway log"
