"""Vouchers over HTTP against the real applications (the API, the portal and the staff
console, as `gateway serve` wires them), in process, on SQLite and PostgreSQL
(docs/vouchers.md): POST /v1/me/vouchers and the portal form redeem a code; a typo, a
wrong and a used code are 422 problems (the last two identical); guessing is capped
(429 with Retry-After); GET /v1/me/credit shows the voucher entry; only admins make,
see and revoke batches in the console, whose sheet shows the codes once. And the portal's
account page, where the voucher form sits, reads in the order a customer needs: the
service and its one primary action, then invoices and payments, then settings."""

import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.bootstrap import build_app
from gateway.domain.money import Fiat
from gateway.domain.vouchers import check_character
from gateway.services.accounts import Signup
from gateway.services.vouchers import BatchSpec
from gateway.staff.context import COOKIE
from tests.support.fake_gateway import T0, World, fake_world
from tests.support.nodes import free_port
from tests.support.staff import enrolled_staff_token

pytestmark = pytest.mark.integration

EMAIL = "voucher.me@example.org"
PASSWORD = "customer password 1"
STAFF_PASSWORD = "a long staff password 1"
PLANS = json.dumps({"vps": {"price": "8.00", "currency": "EUR", "period": "30 days"}})


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


@dataclass
class Served:
    world: World
    api: str
    staff: str
    http: aiohttp.ClientSession
    account_id: str

    async def token(self) -> str:
        return (await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD, None)).token

    async def call(self, method: str, path: str, token: str | None,
                   body: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.api + path, json=body,
                                     headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers

    async def codes(self, count: int = 2, **kw: Any) -> list[str]:
        made = await self.world.gw.services.vouchers.create(BatchSpec(count, **kw))
        return made.codes

    async def staff_token(self, name: str, role: str) -> str:
        return await enrolled_staff_token(self.world.gw.services.staff, name, role,
                                          STAFF_PASSWORD, T0)

    async def page(self, token: str, path: str) -> tuple[int, str]:
        async with self.http.get(self.staff + path, allow_redirects=False,
                                 headers={"Cookie": f"{COOKIE}={token}"}) as resp:
            return resp.status, await resp.text()

    async def post(self, token: str, path: str, form: dict[str, str],
                   csrf_from: str) -> tuple[int, str, Any]:
        async with self.http.post(self.staff + path, data={**form, "csrf": csrf_of(csrf_from)},
                                  allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={token}",
                                           "Origin": self.staff.rsplit("/", 1)[0]}) as resp:
            return resp.status, await resp.text(), resp.headers


@contextlib.asynccontextmanager
async def served(tmp_path: Path, template_dir: Path, database_url: str
                 ) -> AsyncIterator[Served]:
    staff_port = free_port()
    async with fake_world(tmp_path, template_dir, db_url=database_url,
                          GATEWAY_STAFF__LISTEN=f"127.0.0.1:{staff_port}",
                          GATEWAY_PLANS=PLANS,
                          GATEWAY_VOUCHERS__FREE_FAILURES="1",
                          GATEWAY_VOUCHERS__FAILURES_PER_ACCOUNT_PER_HOUR="3") as world:
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


def other_valid(code: str) -> str:
    body = code.replace("-", "")[:-1]
    body = ("1" if body[0] != "1" else "2") + body[1:]
    return body + check_character(body)


async def test_the_api_redeems_once_and_refuses_alike(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        [code] = await s.codes(1, value=Fiat(1250, "EUR"))
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", None, {"code": code})
        assert status == 401
        token = await s.token()
        plain = code.replace("-", "")
        typo = plain[:5] + plain[6] + plain[5] + plain[7:] if plain[5] != plain[6] \
            else plain[:5] + ("0" if plain[5] != "0" else "1") + plain[6:]
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", token, {"code": typo})
        assert status == 422 and "typo" in doc["detail"]
        assert doc["errors"][0]["field"] == "code"
        status, wrong, _ = await s.call("POST", "/v1/me/vouchers", token,
                                        {"code": other_valid(code)})
        assert status == 422 and "cannot be redeemed" in wrong["detail"]
        s.world.clock.advance(seconds=5)  # past the delay after the free failure
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", token,
                                      {"code": code.lower().replace("-", " ")})
        assert status == 200, doc
        assert doc == {"kind": "voucher", "amount": "12.50", "amount_minor": 1250,
                       "currency": "EUR", "credit": {"balance": "12.50",
                                                     "balance_minor": 1250,
                                                     "currency": "EUR"},
                       "plan": None, "periods_bought": 0, "paid_until": None,
                       "billing_state": None}
        s.world.clock.advance(seconds=5)
        again = doc
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", token, {"code": code})
        assert (status, doc) == (200, again)  # its own retry: the same answer, once
        # (Used by another account: the wrong code's answer; tests/integration/
        # test_vouchers.py.)
        s.world.clock.advance(seconds=5)
        status, _, _ = await s.call("POST", "/v1/me/vouchers", token,
                                    {"code": other_valid(other_valid(other_valid(code)))})
        assert status == 422
        status, credit, _ = await s.call("GET", "/v1/me/credit", token)
        assert status == 200
        assert [(e["kind"], e["amount"]) for e in credit["data"]] == [("voucher", "12.50")]
        # The account's cap: 3 wrong codes an hour, then 429 whatever is sent.
        s.world.clock.advance(seconds=5)
        status, _, _ = await s.call("POST", "/v1/me/vouchers", token,
                                    {"code": other_valid(other_valid(code))})
        assert status == 422
        [fresh] = await s.codes(1, value=Fiat(100, "EUR"))
        status, doc, headers = await s.call("POST", "/v1/me/vouchers", token,
                                            {"code": fresh})
        assert status == 429 and int(headers["Retry-After"]) > 3000, doc
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", token, {"code": 7})
        assert status in (422, 429)


async def test_the_portal_form_redeems_a_plan_voucher(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        [code] = await s.codes(1, plan="vps")
        cookie = {"Cookie": f"__Host-session={await s.token()}"}
        async with s.http.get(s.api + "/account", headers=cookie) as resp:
            page = await resp.text()
        assert 'id="voucher-form"' in page
        form = {"code": code, "csrf": csrf_of(page)}
        headers = {**cookie, "Origin": s.api}
        async with s.http.post(s.api + "/account/vouchers", data={**form, "csrf": "1.x"},
                               headers=headers, allow_redirects=False) as resp:
            assert resp.status == 403  # no valid CSRF token: refused before anything
        async with s.http.post(s.api + "/account/vouchers",
                               data={**form, "code": other_valid(code)}, headers=headers,
                               allow_redirects=False) as resp:
            assert resp.status == 422 and "cannot be redeemed" in await resp.text()
        s.world.clock.advance(seconds=5)
        async with s.http.post(s.api + "/account/vouchers", data=form, headers=headers,
                               allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "../account?voucher=1#vouchers"
        async with s.http.get(s.api + "/account?voucher=1", headers=cookie) as resp:
            page = await resp.text()
        assert 'id="voucher-redeemed"' in page
        assert re.search(r'id="paid-until">[^<]+ UTC\+00:00<', page)  # English, in UTC
        assert "<td>voucher</td>" in page and "<td>spent</td>" in page  # the history
        assert code not in page


class Outline(HTMLParser):
    """The account page's sections and headings, in document order: each heading and each
    element with the class "primary" with the ids of the sections it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.labelled: dict[str, str] = {}  # section id -> the id of its heading
        self.headings: list[tuple[int, str, str, tuple[str, ...]]] = []
        self.primary: list[tuple[str, dict[str, str | None], tuple[str, ...]]] = []
        self.heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self.sections.append(found.get("id") or "")
            if found.get("aria-labelledby"):
                self.labelled[found.get("id") or ""] = found["aria-labelledby"] or ""
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.heading = [tag, found.get("id") or "", ""]
        if "primary" in (found.get("class") or "").split():
            self.primary.append((tag, found, tuple(self.sections)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.sections.pop()
        elif self.heading is not None and tag == self.heading[0]:
            level, ident, text = self.heading
            self.headings.append((int(level[1]), ident, text.strip(), tuple(self.sections)))
            self.heading = None

    def handle_data(self, data: str) -> None:
        if self.heading is not None:
            self.heading[2] += data


def outline(page: str) -> Outline:
    parsed = Outline()
    parsed.feed(page)
    assert parsed.sections == []  # every section closed
    return parsed


def check_outline(page: str) -> tuple[Outline, list[str]]:
    """The page's outline is sound; returns it and its top-level (h2) section ids."""
    parsed = outline(page)
    levels = [h[0] for h in parsed.headings]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), parsed.headings  # no skips
    ids = {h[1]: h for h in parsed.headings}
    for section, heading in parsed.labelled.items():  # a landmark named by its own heading
        assert heading in ids and ids[heading][3][-1] == section, (section, heading)
    top = [h[3][-1] for h in parsed.headings if h[0] == 2]
    return parsed, top


async def test_the_account_page_puts_the_service_first_then_payments_then_settings(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        cookie = {"Cookie": f"__Host-session={await s.token()}"}
        async with s.http.get(s.api + "/account", headers=cookie) as resp:
            page = await resp.text()
        parsed, top = check_outline(page)
        assert top == ["status", "payments", "settings"]
        assert [h[2] for h in parsed.headings if h[0] == 2] == [
            "Service", "Invoices and payments", "Settings"]
        placed = {h[3][-1]: h[3][0] for h in parsed.headings if h[0] == 3}
        assert placed == {"buy": "status", "invoices": "payments", "credit": "payments",
                          "vouchers": "payments", "refunds": "payments",
                          "profile": "settings", "two-factor": "settings",
                          "your-data": "settings", "deletion": "settings"}
        # Nothing bought yet: the one primary action is buying, inside the service.
        [(tag, attrs, within)] = parsed.primary
        assert (tag, attrs["id"], within[0]) == ("button", "buy-button", "status")

        async with s.http.post(s.api + "/account/buy",
                               data={"plan": "vps", "coin": "FAK", "csrf": csrf_of(page)},
                               headers={**cookie, "Origin": s.api},
                               allow_redirects=False) as resp:
            assert resp.status == 303
            invoice = resp.headers["Location"].rsplit("/", 1)[1]
        assert invoice.startswith("inv_")
        async with s.http.get(s.api + "/account", headers=cookie) as resp:
            page = await resp.text()
        parsed, top = check_outline(page)
        assert top == ["status", "payments", "settings"]
        # An invoice is open: paying it is now the one primary action, still in the service.
        [(tag, attrs, within)] = parsed.primary
        assert (tag, within[0]) == ("a", "status")
        assert (attrs["href"] or "").endswith(f"pay/{invoice}")
        assert 'id="buy-button">' in page  # buying stays possible, no longer primary


async def test_admins_make_print_list_and_revoke_batches_in_the_console(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        admin = await s.staff_token("ada", "admin")
        finance = await s.staff_token("fin", "finance")
        status, _ = await s.page(finance, "/admin/vouchers")
        assert status == 403
        status, page = await s.page(admin, "/admin/vouchers")
        assert status == 200 and "No batches yet" in page
        status, sheet, headers = await s.post(admin, "/admin/vouchers", {
            "count": "3", "value": "10.00", "currency": "EUR", "expires": "2027-12-31",
            "label": "shop A"}, page)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        codes = re.findall(r'class="code mono">([0-9A-Z-]{23})<', sheet)
        assert len(codes) == 3 and "shown this once" in sheet
        status, page = await s.page(admin, "/admin/vouchers")
        assert "0 of 3" in page and "shop A" in page
        assert not any(c in page for c in codes)  # never again
        batch_id = re.search(r'class="mono">(vbt_[0-9a-z]+)<', page)[1]  # type: ignore[index]
        status, _, headers = await s.post(admin, f"/admin/vouchers/{batch_id}/revoke", {},
                                          page)
        assert status == 303
        status, page = await s.page(admin, f"/admin/vouchers?revoked={batch_id}")
        assert 'class="batch-state">revoked' in page
        status, doc, _ = await s.call("POST", "/v1/me/vouchers", await s.token(),
                                      {"code": codes[0]})
        assert status == 422 and "cannot be redeemed" in doc["detail"]
        status, ledger = await s.page(finance, "/finance")
        assert status == 200 and 'id="voucher-ledger"' in ledger and batch_id in ledger
        assert not any(c in ledger for c in codes)
        status, bad, _ = await s.post(admin, "/admin/vouchers", {"count": "2"}, page)
        assert status == 422 and "value" in bad
        log = await s.world.sql("SELECT action, subject FROM staff_log ORDER BY id")
        assert [r.action for r in log if r.action.startswith("voucher")] == [
            "voucher_batch_created", "voucher_batch_revoked"]
        assert not any(c.replace("-", "") in str(list(r)) for r in log for c in codes)
