"""Live rates from three local servers that speak Kraken's, Bitstamp's and CoinGecko's real
response formats."""

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.e2e.conftest import StackFactory


@dataclass
class PriceServer:
    name: str
    price: str
    up: bool = True
    port: int = 0  # bound to port 0 and read back when the fixture starts it
    requests: list[str] = field(default_factory=list)

    def body(self) -> object:
        if self.name == "kraken":
            return {"error": [], "result": {"XLTCZEUR": {
                "a": [self.price, "1", "1.000"], "b": [self.price, "3", "3.000"],
                "c": [self.price, "0.50000000"], "v": ["1000.1", "2000.2"],
                "p": [self.price, self.price], "t": [100, 200], "l": ["1", "1"],
                "h": ["999", "999"], "o": self.price}}}
        if self.name == "bitstamp":
            return {"timestamp": "1764150000", "open": "79.00", "high": "85.00", "low": "78.00",
                    "last": self.price, "volume": "1234.5", "vwap": "80.1", "bid": "79.9",
                    "ask": "80.2", "side": "0", "open_24": "79.5", "percent_change_24": "1.2"}
        return {"litecoin": {"eur": float(self.price)}}

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if not self.up:
            return web.Response(status=503)
        return web.json_response(self.body())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def price_servers() -> AsyncIterator[list[PriceServer]]:
    servers = [PriceServer("kraken", "80.10"), PriceServer("bitstamp", "81.30"),
               PriceServer("coingecko", "79.90")]
    runners = []
    for server in servers:
        app = web.Application()
        app.router.add_get("/{tail:.*}", server.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server.port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        runners.append(runner)
    yield servers
    for runner in runners:
        await runner.cleanup()


async def test_median_rate_is_locked_and_no_answer_means_503(
    make_stack: StackFactory, price_servers: list[PriceServer]
) -> None:
    kraken, bitstamp, gecko = price_servers
    stack = await make_stack(
        GATEWAY_RATES__FIXED="{}",
        GATEWAY_RATES__SOURCES=json.dumps([s.name for s in price_servers]),
        GATEWAY_RATES__BASE_URLS=json.dumps({s.name: s.url for s in price_servers}),
        GATEWAY_RATES__CACHE_SECONDS="0",
    )
    account = await stack.signup("rates@example.org")
    invoice = await stack.invoice(account["id"], amount="8.01")
    assert invoice["rate"]["value"] == "80.1"
    assert invoice["rate"]["source"] == "median:kraken,bitstamp,coingecko"
    assert invoice["amount_due_base_units"] == "10000000"  # 8.01 / 80.10 = 0.1 LTC
    assert kraken.requests == ["/0/public/Ticker?pair=LTCEUR"]
    assert bitstamp.requests == ["/api/v2/ticker/ltceur/"]
    assert gecko.requests == ["/api/v3/simple/price?ids=litecoin&vs_currencies=eur"]

    kraken.up = False
    invoice = await stack.invoice(account["id"])
    assert invoice["rate"]["value"] == "80.6"  # (81.30 + 79.90) / 2
    assert invoice["rate"]["source"] == "median:bitstamp,coingecko"

    bitstamp.up = gecko.up = False
    before = await stack.count("invoices")
    status, doc, headers = await stack.api.call("POST", "/v1/invoices", {
        "account_id": account["id"], "price": {"amount": "9.99", "currency": "EUR"},
        "coin": "LTC"}, stack.key)
    assert status == 503 and "rates unavailable" in doc["detail"]
    assert headers["Content-Type"].startswith("application/problem+json")
    assert await stack.count("invoices") == before


async def test_a_price_needs_two_agreeing_sources(
    make_stack: StackFactory, price_servers: list[PriceServer]
) -> None:
    """Issue 27 item 12: one source alone, or sources far apart, lock no price (503 with
    the reason); a source far from the others is left out."""
    kraken, bitstamp, gecko = price_servers
    stack = await make_stack(
        GATEWAY_RATES__FIXED="{}",
        GATEWAY_RATES__SOURCES=json.dumps([s.name for s in price_servers]),
        GATEWAY_RATES__BASE_URLS=json.dumps({s.name: s.url for s in price_servers}),
        GATEWAY_RATES__CACHE_SECONDS="0",
    )
    account = await stack.signup("quorum@example.org")

    async def attempt() -> tuple[int, dict[str, object]]:
        status, doc, _ = await stack.api.call("POST", "/v1/invoices", {
            "account_id": account["id"], "price": {"amount": "9.99", "currency": "EUR"},
            "coin": "LTC"}, stack.key)
        return status, doc

    # One source gone wrong (a broken feed, a compromised API) is left out.
    kraken.price = "8.01"
    status, doc = await attempt()
    assert status == 201, doc
    assert doc["rate"] == {**doc["rate"], "value": "80.6", "source": "median:bitstamp,coingecko"}

    # Only one source answers: no price.
    kraken.price, kraken.up, bitstamp.up = "80.10", False, False
    before = await stack.count("invoices")
    status, doc = await attempt()
    assert status == 503, doc
    assert doc["detail"] == ("rates unavailable: 1 of 3 sources answered for LTC-EUR "
                             "(coingecko), 2 needed")

    # All answer, none agree.
    kraken.up = bitstamp.up = True
    kraken.price, bitstamp.price, gecko.price = "60", "80", "100"
    status, doc = await attempt()
    assert status == 503, doc
    detail = str(doc["detail"])
    assert detail.startswith("rates unavailable: the sources disagree on LTC-EUR (kraken 60, "
                             "bitstamp 80, coingecko 100"), detail
    assert detail.endswith("): 1 within 2% of their median 80, 2 needed"), detail
    assert await stack.count("invoices") == before
