"""JSON-RPC 2.0 to monerod and monero-wallet-rpc (aiohttp), plus monerod's "other" RPC
endpoints (`/get_transaction_pool`, `/get_transactions`, ...), which are plain JSON."""

import json
from typing import Any

import aiohttp
import yarl

from chains.base import ChainError


class MoneroRpcError(ChainError):
    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: error {code}: {message}")
        self.code = code
        self.message = message


class MoneroRpc:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parsed = yarl.URL(url)
        # Digest login (`--rpc-login`) is not supported: the RPC ports are loopback-only.
        self._base = parsed.with_path("").with_query(None)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, payload: dict[str, Any], what: str,
                    wait: float | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        limit = self._timeout if wait is None else aiohttp.ClientTimeout(
            total=wait, sock_connect=self._timeout.total)
        try:
            async with self._session.post(str(self._base.with_path(path)), json=payload,
                                          timeout=limit) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChainError(f"{what}: unreachable ({type(exc).__name__})") from None
        try:
            return json.loads(text)
        except ValueError:
            raise ChainError(f"{what}: HTTP {resp.status}, not JSON") from None

    async def call(self, method: str, wait: float | None = None, **params: Any) -> Any:
        """`wait` (seconds) replaces the client's timeout for this call: a wallet's rescan
        answers only when it is done."""
        body = await self._post("/json_rpc", {"jsonrpc": "2.0", "id": "0",
                                              "method": method, "params": params}, method,
                                wait)
        if body.get("error"):
            err = body["error"]
            raise MoneroRpcError(method, int(err.get("code", 0)), str(err.get("message", "")))
        return body["result"]

    async def other(self, path: str, **params: Any) -> Any:
        body = await self._post(path, params, path)
        status = body.get("status")
        if status not in ("OK", None):
            raise MoneroRpcError(path, 0, str(status))
        return body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
