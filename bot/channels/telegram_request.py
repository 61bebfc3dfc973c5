"""python-telegram-bot's HTTP transport on aiohttp, for the Bot API calls that send.

PTB's default transport (httpx) cost about 1.4 ms of CPU a request, most of a delivered
reply: httpx builds and merges URLs and headers for each request, and httpcore walks
every pooled connection, with a system call for each idle one, on each request and
each response. aiohttp's C parser and pool do the same request in about 0.2 ms.

Only the transport changes: PTB still encodes the parameters, reads the answer and
turns 429, 403, 400 and 5xx into its errors (bot/channels/telegram.py maps those).
Timeouts raise `TimedOut` and connection failures `NetworkError`, as with httpx.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

# PTB passes its DEFAULT_NONE sentinel for "the transport's default": any non-number.
_Timeout = object


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one `aiohttp.ClientSession` (opened by `initialize()`)."""

    def __init__(
        self,
        *,
        connection_pool_size: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        write_timeout: float | None,
        pool_timeout: float | None,
    ) -> None:
        self._size = connection_pool_size
        self._connect = connect_timeout
        self._read = read_timeout
        # aiohttp has no separate write timeout: a slow upload counts against `total`.
        self._write = write_timeout
        self._pool = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._size, limit_per_host=self._size)
            # HTTPS_PROXY and NO_PROXY apply, as they did with httpx. Only when one is
            # set: aiohttp then reads the environment and ~/.netrc on every request.
            proxied = bool(urllib.request.getproxies_environment())
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                trust_env=proxied,
                json_serialize=_compact_json,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
        write_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: _Timeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = _given(read_timeout, self._read)
        connect = _given(connect_timeout, self._connect)
        pool = _given(pool_timeout, self._pool)
        write = _given(write_timeout, self._write)
        # aiohttp's `connect` covers waiting for a pooled connection and opening one.
        waiting = None if connect is None or pool is None else connect + pool
        total = (
            None if read is None or write is None or waiting is None else (read + write + waiting)
        )
        timeout = aiohttp.ClientTimeout(
            total=total, connect=waiting, sock_connect=connect, sock_read=read
        )
        form: aiohttp.FormData | None = None
        payload: dict[str, Any] | None = None
        if request_data is not None:
            files = request_data.multipart_data
            if files:
                form = aiohttp.FormData()
                for name, value in request_data.json_parameters.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename, content_type=mimetype)
            else:
                # One JSON body, which the Bot API takes for every call without a file:
                # a form-encoded body cost a quarter of a send's CPU (urlencode).
                payload = request_data.parameters
        try:
            async with session.request(
                method, url, data=form, json=payload, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _given(value: object, default: float | None) -> float | None:
    """A timeout passed for this call, or the default (PTB passes `DEFAULT_NONE`)."""
    if isinstance(value, int | float) or value is None:
        return None if value is None else float(value)
    return default
