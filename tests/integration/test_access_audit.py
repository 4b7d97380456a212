"""Issue 28, item 6: every read of a customer's data by staff or by an API key says why,
and lands in the access audit the customer sees in their export.

Over HTTP against the real applications (the API and the staff console, as `gateway
serve` wires them) on SQLite and PostgreSQL: each look without a reason is refused and
leaves no audit entry; with one, the customer's own export (`GET /v1/me/export`, what the
portal's export links fetch) holds the entry with who looked (the staff member, or the
API key by its name, never its secret), at what, and why."""

import contextlib
import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from chains.base import MempoolSeen, Observed
from gateway.bootstrap import build_app
from gateway.services.accounts import Signup
from gateway.services.chain_events import Feed
from gateway.staff.context import COOKIE
from tests.support.fake_gateway import T0, World, fake_world
from tests.support.nodes import free_port
from tests.support.staff import enrolled_staff_token

pytestmark = pytest.mark.integration

EMAIL = "looked.at@example.org"
PASSWORD = "customer password 1"
STAFF_PASSWORD = "a long staff password 1"
SCOPES = ("personal_data:read", "invoices:read")


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("template")


@dataclass
class Served:
    world: World
    api: str
    staff: str
    http: aiohttp.ClientSession
    account_id: str
    invoice_id: str
    txid: str

    async def staff_token(self, name: str, role: str) -> str:
        """A member with TOTP on, logged in (what /staff/login and /staff/enrol do)."""
        return await enrolled_staff_token(self.world.gw.services.staff, name, role,
                                          STAFF_PASSWORD, T0)

    async def page(self, token: str, path: str, **query: str) -> tuple[int, str, str]:
        async with self.http.get(self.staff + path, params=query, allow_redirects=False,
                                 headers={"Cookie": f"{COOKIE}={token}"}) as resp:
            return resp.status, resp.content_type, await resp.text()

    async def post(self, token: str, path: str, form: dict[str, str],
                   csrf_from: str) -> tuple[int, str]:
        csrf = re.search(r'name="csrf" value="([^"]+)"', csrf_from)
        assert csrf is not None
        async with self.http.post(self.staff + path, data={**form, "csrf": csrf[1]},
                                  allow_redirects=False,
                                  headers={"Cookie": f"{COOKIE}={token}",
                                           "Origin": self.staff.rsplit("/", 1)[0]}) as resp:
            return resp.status, await resp.text()

    async def audit(self) -> list[dict[str, Any]]:
        """The access audit as the customer sees it: their own export, over HTTP."""
        login = await self.world.gw.services.accounts.log_in(EMAIL, PASSWORD)
        async with self.http.get(f"{self.api}/v1/me/export?format=json", headers={
                "Authorization": f"Bearer {login.token}"}) as resp:
            assert resp.status == 200
            return list(json.loads(await resp.read())["audit_log"])


@contextlib.asynccontextmanager
async def served(tmp_path: Path, template_dir: Path, database_url: str
                 ) -> AsyncIterator[Served]:
    staff_port = free_port()
    async with fake_world(tmp_path, template_dir, db_url=database_url,
                          GATEWAY_STAFF__LISTEN=f"127.0.0.1:{staff_port}") as world:
        gw = world.gw
        view = await gw.services.accounts.sign_up(Signup(
            EMAIL, PASSWORD, display_name="Looked At", datacenter="is-rey", currency="USD"))
        account_id = view.account.id
        invoice = await world.invoice(account_id)
        key = bytes.fromhex(invoice.record.address.removeprefix("fake1"))
        await world.tracker.mempool_seen(Feed(world.follower.feed, world.follower.coins),
                                         MempoolSeen((Observed(
                                             "FAK", "txAudit", 0, key,
                                             invoice.record.invoice.terms.amount_due,
                                             None),)))
        server = TestServer(build_app(gw), host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                yield Served(world, str(server.make_url("")).rstrip("/"),
                             f"http://127.0.0.1:{staff_port}/staff", http, account_id,
                             invoice.record.invoice.id, "txAudit")
        finally:
            await server.close()


async def test_api_reads_of_personal_data_need_a_reason_and_name_the_key(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        secret = (await s.world.gw.services.api_keys.create("crm sync", list(SCOPES))).secret
        key_id = (await s.world.gw.services.api_keys.list())[0].id
        auth = {"Authorization": f"Bearer {secret}"}
        for path in (f"/v1/accounts/{s.account_id}", f"/v1/accounts/{s.account_id}/export"):
            # Review of issue 28: the console's rule, 10 to 200 characters with spaces
            # collapsed (a one-character reason was taken).
            for headers, message in (
                    ({}, "is required"), ({"X-Access-Reason": "   "}, "is required"),
                    ({"X-Access-Reason": "x"}, "1 given"),
                    ({"X-Access-Reason": "ticket \t  42"}, "9 given"),
                    ({"X-Access-Reason": "y" * 201}, "201 given")):
                async with s.http.get(s.api + path, headers={**auth, **headers}) as resp:
                    assert resp.status == 400, path
                    assert resp.content_type == "application/problem+json"
                    problem = await resp.json()
                assert "X-Access-Reason" in problem["detail"]
                assert "access audit" in problem["detail"]
                assert "10 to 200 characters" in problem["detail"]
                assert [e["field"] for e in problem["errors"]] == ["X-Access-Reason"]
                assert problem["errors"][0]["message"].endswith(message), problem
        assert await s.audit() == []  # a refused read leaves no entry

        async with s.http.get(f"{s.api}/v1/accounts/{s.account_id}", headers={
                **auth, "X-Access-Reason": "provisioning  the new\tserver"}) as resp:
            assert resp.status == 200 and (await resp.json())["email"] == EMAIL
        async with s.http.get(f"{s.api}/v1/accounts/{s.account_id}/export", headers={
                **auth, "X-Access-Reason": "data request ticket 12"}) as resp:
            assert resp.status == 200
        entries = await s.audit()
        assert [(e["actor"], e["action"], e["reason"]) for e in entries] == [
            (f"key:crm sync ({key_id})", "read_account", "provisioning the new server"),
            (f"key:crm sync ({key_id})", "export", "data request ticket 12")]
        assert entries[0]["fields"] == "email display_name company datacenter currency"
        assert secret not in json.dumps(entries)


async def test_staff_looks_at_an_account_need_a_reason_and_reach_the_customer(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        sam = await s.staff_token("sam", "support")
        path = f"/accounts/{s.account_id}"
        # Without a reason: the question, and nothing of the account.
        for query in ({}, {"reason": "too short"}):
            status, kind, body = await s.page(sam, path, **query)
            assert (status, kind) == ((422 if query else 200), "text/html")
            assert 'id="look-reason"' in body and "is-rey" not in body
            assert "USD" not in body and s.invoice_id not in body
        assert await s.audit() == []

        reason = "customer asked by phone about the datacenter move"
        status, _, body = await s.page(sam, path, reason=reason)
        assert status == 200
        assert 'id="account-datacenter">is-rey<' in body and "USD" in body
        assert s.invoice_id in body and EMAIL not in body
        # The invoice link carries the reason on: following it is another audited look.
        assert f"/staff/invoices/{s.invoice_id}?reason=" in html.unescape(body)

        # The email: refused without its own reason (nothing shown), then shown.
        status, refused = await s.post(sam, f"{path}/email", {"reason": ""}, body)
        assert status == 422 and "reason is required" in refused
        assert EMAIL not in refused and "is-rey" not in refused
        status, shown = await s.post(sam, f"{path}/email",
                                     {"reason": "customer lost access, ticket 77"}, body)
        assert status == 200 and f'<span id="email">{EMAIL}</span>' in shown

        entries = [(e["actor"], e["action"], e["fields"], e["reason"])
                   for e in await s.audit()]
        assert entries == [
            ("staff:sam", "staff_viewed_account", "datacenter currency invoices", reason),
            ("staff:sam", "read_account",
             "email display_name company datacenter currency invoices",
             "customer lost access, ticket 77")]


async def test_staff_looks_at_invoices_and_the_ledger_csv_reach_the_customer(
        tmp_path: Path, template_dir: Path, database_url: str) -> None:
    async with served(tmp_path, template_dir, database_url) as s:
        fay = await s.staff_token("fay", "finance")
        path = f"/invoices/{s.invoice_id}"
        for query in ({}, {"reason": "x"}):
            status, _, body = await s.page(fay, path, **query)
            assert status == (422 if query else 200)
            assert 'id="look-reason"' in body
            assert s.account_id not in body and s.txid not in body
        # The ledger CSV names each payment's account: a reason first, the period kept.
        status, kind, body = await s.page(fay, "/finance/payments.csv", coin="FAK")
        assert (status, kind) == (200, "text/html") and s.account_id not in body
        assert 'name="coin" value="FAK"' in body
        assert await s.audit() == []

        invoice_reason = "reconciling a payment the customer disputes"
        status, _, body = await s.page(fay, path, reason=invoice_reason)
        assert status == 200 and s.txid in body and s.account_id in body
        csv_reason = "monthly bookkeeping for the accountant"
        status, kind, csv = await s.page(fay, "/finance/payments.csv", coin="FAK",
                                         reason=csv_reason)
        assert (status, kind) == (200, "text/csv") and s.account_id in csv

        entries = [(e["actor"], e["action"], e["fields"], e["reason"])
                   for e in await s.audit()]
        assert entries == [
            ("staff:fay", "staff_viewed_invoice",
             f"invoice:{s.invoice_id} payments webhook_events", invoice_reason),
            ("staff:fay", "staff_exported_payments", "payments account_id", csv_reason)]
