"""A small JSON-RPC 1.0 client for Bitcoin Core-style nodes (aiohttp, Decimal amounts)."""

import json
from decimal import Decimal
from typing import Any

import aiohttp
import yarl

from chains.base import ChainError


class JsonRpcError(ChainError):
    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: node error {code}: {message}")
        self.code = code


class JsonRpcClient:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parsed = yarl.URL(url)
        self._headers = (
            {"Authorization": aiohttp.encode_basic_auth(parsed.user, parsed.password or "")}
            if parsed.user
            else {}
        )
        self._url = str(parsed.with_user(None).with_password(None))
        self._origin = str(parsed.origin())
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._ids = 0

    async def call(self, method: str, *params: Any) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self._ids += 1
        payload = {"jsonrpc": "1.0", "id": self._ids, "method": method, "params": list(params)}
        try:
            async with self._session.post(self._url, json=payload, headers=self._headers) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The URL is not in the message: it may carry RPC credentials.
            raise ChainError(f"{method}: node unreachable ({type(exc).__name__})") from None
        try:
            body = json.loads(text, parse_float=Decimal)
        except ValueError:
            raise ChainError(f"{method}: HTTP {resp.status}, not JSON") from None
        if body.get("error"):
            err = body["error"]
            raise JsonRpcError(method, int(err.get("code", 0)), str(err.get("message", "")))
        return body["result"]

    async def get_bytes(self, path: str) -> bytes:
        """A GET on the node's unauthenticated REST interface (`-rest`), e.g.
        `/rest/block/<hash>.bin`: the body as bytes."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._origin + path) as resp:
                body = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChainError(f"REST {path}: node unreachable ({type(exc).__name__})") from None
        if resp.status != 200:
            raise ChainError(f"REST {path}: HTTP {resp.status} (is -rest set on the node?)")
        return body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
