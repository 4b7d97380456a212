"""Cash by mail over HTTP against the real applications (the portal and the staff console,
as `gateway serve` wires them), on SQLite and PostgreSQL (docs/cash.md): the portal says
cash is off until `[cash] postal_address` is set, then shows the instructions and gives a
token once (CSRF-checked form, no-store); a finance member records the envelope, a second
record is refused with what happened, support staff cannot; the customer's credit shows
it; no token reaches the log."""

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.bootstrap import build_app
from gateway.http.auth import SESSION_COOKIE
from gateway.services.accounts import Signup
from gateway.services.finance import Period
from gateway.staff.context import COOKIE
from tests.support.fake_gateway import T0, World, fake_world
from tests.support.nodes import free_port
from tests.support.staff import enrolled_staff_token

pytestmark = pytest.mark.integration

EMAIL = "cash.payer@example.org"
PASSWORD = "customer password 1"
STAFF_PASSWORD = "a long staff password 1"
ADDRESS = "Example Hosting\nPO Box 123\n1000 AA Amsterdam"


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


@dataclass
class Served:
    world: World
    portal: str
    staff: str
    http: aiohttp.ClientSession
    account_id: str

    async def customer(self, method: str, path: str, form: dict[str, str] | None = None
                       ) -> tuple[int, str, Any]:
        token = (await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD, None)).token
        async with self.http.request(method, self.portal + path, data=form,
                                     allow_redirects=False, headers={
                                         "Cookie": f"{SESSION_COOKIE}={token}",
                                         "Origin": self.portal}) as resp:
            return resp.status, await resp.text(), resp.headers

    async def api(self, method: str, path: str) -> tuple[int, Any]:
        token = (await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD, None)).token
        async with self.http.request(method, self.portal + path, headers={
                "Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json(content_type=None)

    async def portal_form(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        """GET the page for its CSRF token, then POST it in the same session."""
        token = (await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD, None)).token
        headers = {"Cookie": f"{SESSION_COOKIE}={token}", "Origin": self.portal}
        async with self.http.get(self.portal + path, headers=headers) as resp:
            csrf = csrf_of(await resp.text())
        async with self.http.post(self.portal + path, data={**form, "csrf": csrf},
                                  allow_redirects=False, headers=headers) as resp:
            return resp.status, await resp.text()

    async def staff_token(self, name: str, role: str) -> str:
        return await enrolled_staff_token(self.world.gw.services.staff, name, role,
                                          STAFF_PASSWORD, T0)

    async def staff_page(self, token: str, path: str) -> tuple[int, str]:
        async with self.http.get(self.staff + path, allow_redirects=False,
                                 headers={"Cookie": f"{COOKIE}={token}"}) as resp:
            return resp.status, await resp.text()

    async def staff_post(self, token: str, path: str, form: dict[str, str]) -> tuple[int, str]:
        _, page = await self.staff_page(token, path)
        async with self.http.post(self.staff + path, data={**form, "csrf": csrf_of(page)},
                                  allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={token}",
                                           "Origin": self.staff.rsplit("/", 1)[0]}) as resp:
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def served(tmp_path: Path, template_dir: Path, database_url: str,
                 **env: str) -> AsyncIterator[Served]:
    staff_port = free_port()
    async with fake_world(tmp_path, template_dir, db_url=database_url,
                          GATEWAY_STAFF__LISTEN=f"127.0.0.1:{staff_port}", **env) as world:
        gw = world.gw
        view = await gw.services.accounts.sign_up(Signup(
            EMAIL, PASSWORD, datacenter="is-rey", currency="EUR"))
        server = TestServer(build_app(gw), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Served(world, str(server.make_url("")).rstrip("/"),
                             f"http://127.0.0.1:{staff_port}/staff", http, view.account.id)
        finally:
            await server.close()


async def test_without_a_postal_address_cash_is_off(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        status, page, _ = await s.customer("GET", "/account/cash")
        assert status == 200 and 'id="cash-off"' in page and "cash-form" not in page
        status, _, _ = await s.customer("POST", "/account/cash", {"csrf": "1.x"})
        assert status == 403  # the CSRF check comes first, as on every form
        status, problem = await s.api("POST", "/v1/me/cash-tokens")
        assert status == 409 and "not offered" in problem["detail"]
        async with s.world.gw.uow() as uow:
            assert await uow.cash_tokens.open_for(s.account_id, T0) == []


async def test_a_customer_gets_a_token_and_finance_records_the_envelope_once(
        tmp_path: Path, template_dir: Path, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with served(tmp_path, template_dir, database_url,
                      GATEWAY_CASH__POSTAL_ADDRESS=ADDRESS,
                      GATEWAY_CASH__INSTRUCTIONS="Euro notes only.") as s:
        status, page, headers = await s.customer("GET", "/account/cash")
        assert status == 200 and "PO Box 123" in page and "Euro notes only." in page
        assert "You have no open token" in page and headers["Cache-Control"] == "no-store"
        status, _, _ = await s.customer("POST", "/account/cash", {})
        assert status == 403  # no CSRF token: refused
        status, page = await s.portal_form("/account/cash", {})
        found = re.search(r'id="cash-token">([2-9A-Z-]{14})<', page)
        assert status == 200 and found is not None, page
        token = found[1]
        status, page, _ = await s.customer("GET", "/account/cash")
        assert token not in page and 'id="cash-open"' in page  # shown once

        support = await s.staff_token("sam", "support")
        status, page = await s.staff_page(support, "/finance/cash")
        assert status == 403
        finance = await s.staff_token("fay", "finance")
        status, page = await s.staff_page(finance, "/finance/cash")
        assert status == 200 and "cash-form" in page
        status, page = await s.staff_post(finance, "/finance/cash", {
            "token": token[:-1] + ("2" if token[-1] != "2" else "3"), "amount": "50.00",
            "currency": "EUR", "note": ""})
        assert status == 422 and "a character is wrong" in page
        form = {"token": token.lower(), "amount": "50.00", "currency": "EUR",
                "note": "two 20s, one 10"}
        status, page = await s.staff_post(finance, "/finance/cash", form)
        assert status == 200 and "50.00 EUR credited" in page, page
        assert s.account_id not in page  # the console never names the account
        status, page = await s.staff_post(finance, "/finance/cash", form)
        assert status == 422 and "used already" in page

        status, page, _ = await s.customer("GET", "/account")
        assert 'id="credit-balance"><bdi dir="ltr">€50.00</bdi><' in page and "<td>cash</td>" in page
        log = await s.world.gw.services.staff.recent_log()
        assert [e.action for e in log].count("cash_recorded") == 1

        # The API gives a token too (replacing an open one), with where to send it.
        status, first = await s.api("POST", "/v1/me/cash-tokens")
        assert status == 201 and first["postal_address"] == ADDRESS, first
        assert not first["replaced"] and re.fullmatch(r"[2-9A-Z]{4}(-[2-9A-Z]{4}){2}",
                                                      first["token"])
        status, second = await s.api("POST", "/v1/me/cash-tokens")
        assert status == 201 and second["replaced"] and second["token"] != first["token"]
        status, page = await s.staff_post(finance, "/finance/cash", {
            "token": first["token"], "amount": "5.00", "currency": "EUR", "note": ""})
        assert status == 404 and "replaced by a newer one" in page
        status, page = await s.staff_post(finance, "/finance/cash", {
            "token": second["token"], "amount": "5.00", "currency": "EUR", "note": ""})
        assert status == 200 and "5.00 EUR credited" in page
        secrets = (first["token"], second["token"])

        # Finance's credit ledger (the console's ledger page, `payments export
        # --credit-out`) lists the envelopes by the token's id, never the token.
        lines = await s.world.gw.services.finance.credit(Period())
        cash = [line for line in lines if line["kind"] == "cash"]
        assert [(c["amount"], c["currency"], c["account_id"]) for c in cash] == [
            ("50.00", "EUR", s.account_id), ("5.00", "EUR", s.account_id)]
        assert all(str(c["cause"]).startswith("cash:ctk_") for c in cash)
        status, ledger = await s.staff_page(finance, "/finance")
        assert status == 200 and ledger.count("<td>cash</td>") == 2, ledger
        for shown in (token, *secrets):
            assert shown not in str(lines) and shown.replace("-", "") not in str(lines)
            assert shown not in ledger
    text = caplog.text
    for shown in (token, *secrets):
        assert shown not in text and shown.replace("-", "") not in text
        assert shown.lower() not in text


async def test_a_members_refused_lookups_are_capped(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url,
                      GATEWAY_CASH__POSTAL_ADDRESS=ADDRESS,
                      GATEWAY_CASH__REFUSED_LOOKUPS_PER_HOUR="3") as s:
        status, page = await s.portal_form("/account/cash", {})
        found = re.search(r'id="cash-token">([2-9A-Z-]{14})<', page)
        assert found is not None
        finance = await s.staff_token("fay", "finance")
        other = await s.staff_token("fred", "finance")
        guesses = ["ABCD-EFGH-JKMN", "2345-6789-ABCD", "ZZZZ-ZZZZ-ZZZ2"]
        for guess in guesses:  # mistyped or unknown: each counts
            status, page = await s.staff_post(finance, "/finance/cash", {
                "token": guess, "amount": "5.00", "currency": "EUR", "note": ""})
            assert status in (404, 422), page
        form = {"token": found[1], "amount": "5.00", "currency": "EUR", "note": ""}
        status, page = await s.staff_post(finance, "/finance/cash", form)
        assert status == 429 and "too many refused token attempts" in page
        # Another member is counted on their own; the envelope is recorded once.
        status, page = await s.staff_post(other, "/finance/cash", form)
        assert status == 200 and "5.00 EUR credited" in page
        log = await s.world.gw.services.staff.recent_log()
        assert [e.action for e in log].count("cash_refused") == 3
