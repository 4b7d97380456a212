"""Languages over HTTP (issue 32, docs/i18n.md), against the application `gateway serve`
builds, on a real SQLite database with a real SMTP server on loopback: a page in the
browser's language (or the one chosen in the menu, which the preference cookie keeps),
`lang` and `dir` on it, right-to-left Persian with addresses and amounts kept left to
right, the checkout's amount in the locale's style while the copied value and the payment
URI stay plain, problem details in the customer's language (an API key's client gets
English), and the account's mails in the language it last chose.

The catalogs here are a tiny test catalog (tests/support/i18n.py): the real ones are
filled by translators, and these tests must show which catalog text went through."""

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway import i18n
from gateway.bootstrap import build_app
from gateway.domain.accounts import email_lookup_form
from gateway.domain.money import format_units
from gateway.services.accounts import Signup
from tests.support.fake_gateway import World, fake_world
from tests.support.i18n import tiny_catalogs
from tests.support.inbox import Inbox, inbox, smtp_env  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

PASSWORD = "customer password 1"
RESET_DE = "Setzen Sie Ihr Packetra-Passwort zurück"
RESET_FA = "گذرواژهٔ Packetra خود را بازنشانی کنید"
TINY = {
    "de": {"Create an account": "Konto anlegen", "Log in": "Anmelden",
           "Reset your Packetra password": RESET_DE,
           "Unauthorized": "Nicht autorisiert",
           "log in first: a session cookie or bearer token is required":
               "zuerst anmelden: ein Sitzungscookie oder Bearer-Token ist nötig",
           "Send exactly": "Genau diesen Betrag senden"},
    "fa": {"Create an account": "ایجاد حساب", "Reset your Packetra password": RESET_FA},
}


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@dataclass
class Served:
    world: World
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str, **headers: str) -> tuple[int, str, Any]:
        async with self.http.get(self.url + path, allow_redirects=False,
                                 headers=headers) as resp:
            return resp.status, await resp.text(), resp

    async def language_of(self, email: str) -> str | None:
        async with self.world.gw.uow() as uow:
            login = await uow.accounts.find_login(
                self.world.gw.core.index(email_lookup_form(email)))
        assert login is not None
        return login.account.language


@asynccontextmanager
async def served(tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch,
                 **env: str) -> AsyncIterator[Served]:
    catalogs = tiny_catalogs(TINY)
    # The gateway reads its catalogs once, when it is built: these instead.
    monkeypatch.setattr(i18n.Catalogs, "load", classmethod(lambda cls, *a, **k: catalogs))
    async with fake_world(tmp_path, template_dir, **env) as world:
        server = TestServer(build_app(world.gw), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession(
                    cookie_jar=aiohttp.DummyCookieJar()) as http:
                yield Served(world, str(server.make_url("")).rstrip("/"), http)
        finally:
            await server.close()


def subject(mail: Message) -> str:
    """The Subject as written (non-ASCII travels RFC 2047-encoded)."""
    return str(make_header(decode_header(mail["Subject"])))


def html_tag(page: str) -> str:
    found = re.search(r"<html[^>]*>", page)
    assert found is not None, page
    return found[0]


async def test_a_page_speaks_the_browsers_language_or_the_chosen_one(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        status, page, resp = await s.get("/signup")
        assert status == 200 and html_tag(page) == '<html lang="en" dir="ltr">'
        assert resp.headers["Content-Language"] == "en"
        _, page, resp = await s.get("/signup", **{"Accept-Language": "de-AT,de;q=0.9"})
        assert html_tag(page) == '<html lang="de" dir="ltr">' and "<h1>Konto anlegen</h1>" in page
        assert resp.headers["Content-Language"] == "de"
        # Persian: right to left, from the locale's data.
        _, page, _ = await s.get("/signup", **{"Accept-Language": "fa-IR, en;q=0.5"})
        assert html_tag(page) == '<html lang="fa" dir="rtl">' and "<h1>ایجاد حساب</h1>" in page
        assert 'id="email" name="email" type="email" required autocomplete="email" dir="ltr"' \
            in page  # an address is typed left to right
        # No language we speak, and the client's address says nothing: English.
        _, page, _ = await s.get("/signup", **{"Accept-Language": "pt-BR",
                                               "X-Forwarded-For": "85.214.132.117"})
        assert html_tag(page) == '<html lang="en" dir="ltr">'

        # The menu on every page: plain links (no JavaScript), each back to this page.
        for path in ("/signup", "/login", "/forgot"):
            _, page, _ = await s.get(path, **{"Accept-Language": "de"})
            menu = re.search(r'<nav class="languages"[^>]*>(.*?)</nav>', page, re.S)
            assert menu is not None, path
            links = re.findall(r'<a href="([^"]+)" lang="([^"]+)"', menu[1])
            assert [lang for _, lang in links] == ["en", "de", "fr", "es", "ru", "zh-Hans",
                                                   "fa"]
            assert (f"./lang?l=de&amp;next={path[1:]}", "de") in links
            assert 'aria-current="true">Deutsch<' in menu[1]


async def test_the_menu_sets_the_cookie_and_returns_only_to_this_site(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        status, _, resp = await s.get("/lang?l=fa&next=pay/inv_x%3Fa%3D1")
        assert status == 303 and resp.headers["Location"] == "./pay/inv_x?a=1"
        cookie = resp.cookies["__Host-pref"]
        assert cookie.value == "||fa"
        assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
        assert cookie["samesite"] == "Strict"
        # The choice beats the browser's languages from now on.
        _, page, _ = await s.get("/login", **{"Accept-Language": "de",
                                              "Cookie": "__Host-pref=||fa"})
        assert html_tag(page) == '<html lang="fa" dir="rtl">'
        # The currency and datacenter the cookie already holds stay in it.
        _, _, resp = await s.get("/lang?l=zh-Hans&next=signup",
                                 Cookie="__Host-pref=EUR|is-rey|fa")
        assert resp.cookies["__Host-pref"].value == "EUR|is-rey|zh_Hans"
        _, page, _ = await s.get("/signup", Cookie="__Host-pref=EUR|is-rey|zh_Hans")
        assert html_tag(page) == '<html lang="zh-Hans" dir="ltr">'
        assert '<option value="EUR" selected>' in page  # the old cookie's part still read
        # Never elsewhere: another host, a scheme, an absolute path all go to the login.
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                       "%2F%2Fevil.example", "javascript:alert(1)", "/account"):
            status, _, resp = await s.get(f"/lang?l=de&next={target}")
            assert status == 303 and resp.headers["Location"] == "./login", target
        # A language we do not speak sets nothing.
        status, _, resp = await s.get("/lang?l=tlh&next=login")
        assert status == 303 and "__Host-pref" not in resp.cookies


async def test_the_checkout_shows_the_locale_and_copies_the_plain_amount(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        account = await s.world.account()
        invoice = await s.world.invoice(account, eur="1234.50")
        inv = invoice.record.invoice
        amount = format_units(inv.terms.amount_due, inv.terms.decimals)  # "0.12345678"
        assert "." in amount  # a fraction: the locales below write it differently
        _, page, _ = await s.get(f"/pay/{inv.id}", **{"Accept-Language": "de"})
        assert html_tag(page) == '<html lang="de" dir="ltr">'
        shown = i18n.amount(amount, "de")
        assert shown != amount and "," in shown
        assert f'<h1>Pay <bdi dir="ltr">{shown}</bdi> FAK</h1>' in page
        assert '<bdi dir="ltr">1.234,50\xa0€</bdi>' in page  # the price in German style
        assert f'id="amount" class="mono" type="text" readonly value="{amount}" dir="ltr"' \
            in page  # what is copied: the plain form a wallet accepts
        assert f'value="{invoice.record.address}" spellcheck="false" dir="ltr"' in page
        uri = invoice.record.payment_uri  # exactly as the wallet gets it, in any language
        assert f'href="{html.escape(uri)}"' in page and shown not in uri
        assert "<h2>Genau diesen Betrag senden</h2>" in page
        assert re.search(r'<time datetime="[^"]+">\d\d\.\d\d\.\d{4}, \d\d:\d\d UTC\+00:00</time>',
                         page)

        _, page, _ = await s.get(f"/pay/{inv.id}", **{"Accept-Language": "fa"})
        assert html_tag(page) == '<html lang="fa" dir="rtl">'
        assert '<div dir="ltr"><svg' in page  # the QR code is never mirrored
        assert f'<bdi dir="ltr">{inv.id}</bdi>' in page


async def test_a_customers_problem_is_in_their_language_an_api_clients_in_english(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        async with s.http.get(s.url + "/v1/me", headers={"Accept-Language": "de"}) as resp:
            body = await resp.json(content_type=None)
        assert resp.status == 401 and body["type"] == "about:blank"
        assert body["title"] == "Nicht autorisiert"
        assert body["detail"].startswith("zuerst anmelden")
        async with s.http.get(s.url + "/v1/invoices", headers={
                "Accept-Language": "de", "Authorization": "Bearer gk_not_a_key"}) as resp:
            body = await resp.json(content_type=None)
        assert resp.status == 401 and body["title"] == "Unauthorized"


async def test_mails_go_out_in_the_language_the_account_last_chose(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch,
        inbox: Inbox) -> None:  # noqa: F811 (the fixture)
    env = smtp_env(inbox, GATEWAY_ACCOUNTS__REQUIRE_EMAIL_VERIFICATION="false")
    async with served(tmp_path, template_dir, monkeypatch, **env) as s:
        email = "sprache@example.org"
        _, page, _ = await s.get("/signup", **{"Accept-Language": "de"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        async with s.http.post(s.url + "/signup", allow_redirects=False, data={
                "csrf": csrf[1], "email": email, "password": PASSWORD},
                headers={"Accept-Language": "de", "Origin": s.url}) as resp:
            assert resp.status == 303, await resp.text()
            session = resp.cookies["__Host-session"].value
        assert await s.language_of(email) == "de"  # signed up on a German page

        await s.world.gw.services.recovery.request_reset(email)
        [mail] = await inbox.wait(email, 1)
        assert subject(mail) == RESET_DE

        # Logged in, the menu's choice is the account's too: the next mail is Persian.
        _, _, resp = await s.get("/lang?l=fa&next=account",
                                 Cookie=f"__Host-session={session}")
        assert resp.headers["Location"] == "./account"
        assert await s.language_of(email) == "fa"
        await s.world.gw.services.recovery.request_reset(email)
        mails = await inbox.wait(email, 2)
        assert subject(mails[1]) == RESET_FA


async def test_a_login_brings_the_accounts_language_and_takes_the_browsers_choice(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        email = "zuhause@example.org"
        await s.world.gw.services.accounts.sign_up(Signup(email, PASSWORD, language="fa"))

        async def log_in(cookie: str | None) -> Any:
            headers = {"Cookie": cookie} if cookie else {}
            _, page, _ = await s.get("/login", **headers)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf is not None
            async with s.http.post(s.url + "/login", allow_redirects=False, data={
                    "csrf": csrf[1], "email": email, "password": PASSWORD},
                    headers={"Origin": s.url, **headers}) as resp:
                assert resp.status == 303, await resp.text()
                return resp

        # A new browser, no choice made on it: the account's language comes back.
        resp = await log_in(None)
        assert resp.cookies["__Host-pref"].value == "||fa"
        # Chosen in the menu before logging in: the account takes it (for its mails).
        resp = await log_in("__Host-pref=EUR||de")
        assert "__Host-pref" not in resp.cookies  # the browser already has it
        assert await s.language_of(email) == "de"


async def test_the_account_page_in_german_and_in_persian(
        tmp_path: Path, template_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served(tmp_path, template_dir, monkeypatch) as s:
        email = "konto@example.org"
        view = await s.world.gw.services.accounts.sign_up(Signup(email, PASSWORD))
        invoice = await s.world.invoice(view.account.id, eur="1234.50")
        token = (await s.world.gw.services.accounts.log_in(email, PASSWORD)).token
        cookie = f"__Host-session={token}"
        _, page, _ = await s.get("/account", Cookie=cookie, **{"Accept-Language": "de"})
        assert html_tag(page) == '<html lang="de" dir="ltr">'
        assert "1.234,50\xa0€" in page  # the invoice's price, German style
        assert 'id="logout">Log out<' in page  # not translated in the tiny catalog: English
        _, page, _ = await s.get("/account", Cookie=cookie, **{"Accept-Language": "fa"})
        assert html_tag(page) == '<html lang="fa" dir="rtl">'
        inv = invoice.record.invoice.id
        assert f'class="mono" dir="ltr">{inv}</a>' in page  # an id reads left to right
        assert '<bdi dir="ltr">‎€\xa01,234.50</bdi>' in page
