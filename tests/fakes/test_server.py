"""The shared stand-in server: it records, fails on request, hangs and goes down."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.server import RecordingServer


class FakeEcho(RecordingServer):
    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/{method}", self._echo)]

    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False}, status=status)

    async def _echo(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "got": (await request.read()).decode()})


async def post(fake: FakeEcho, method: str, body: str = "x", timeout: float = 5.0) -> int:
    timeout_after = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=timeout_after) as http,
        http.post(f"{fake.base_url}/v1/{method}", data=body) as response,
    ):
        return response.status


async def test_requests_are_recorded_with_their_answer() -> None:
    async with FakeEcho() as fake:
        assert await post(fake, "send", "hello") == 200
        (seen,) = fake.of("send")
        assert (seen.method, seen.path, seen.body, seen.status) == ("POST", "/v1/send", b"hello", 200)


async def test_fail_next_by_endpoint_after_some_went_through() -> None:
    async with FakeEcho() as fake:
        fake.fail_next(2, status=503, endpoint="send", after=1)
        statuses = [await post(fake, "send"), await post(fake, "read"), await post(fake, "send")]
        statuses += [await post(fake, "send"), await post(fake, "send")]
        assert statuses == [200, 200, 503, 503, 200]


async def test_down_and_hang() -> None:
    async with FakeEcho() as fake:
        fake.down = True
        assert await post(fake, "send") == 503
        fake.down = False
        fake.hang = True
        with pytest.raises(asyncio.TimeoutError):
            await post(fake, "send", timeout=0.3)
        fake.hang = False
        await fake.wait_for(lambda: fake.requests[-1].status == 200)


async def test_dropping_closes_the_connection_without_an_answer() -> None:
    async with FakeEcho() as fake:
        fake.dropping = True
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(fake, "send")
        assert fake.requests[-1].status == 0
        fake.dropping = False
        assert await post(fake, "send") == 200
