"""What every provider's stand-in shares: a local HTTP server that records each request and can be
made to fail, hang or be down; the provider's module adds only its handlers, its error format and
the builders of what it sends to the bot (signed webhooks).

    class FakeAcme(RecordingServer):
        def routes(self) -> list[web.RouteDef]: ...            # only the methods our code calls
        def error(self, status: int, request: web.Request) -> web.StreamResponse: ...

    async with FakeAcme() as fake:   # fake.base_url is where the real SDK is pointed
        fake.fail_next(2, status=503, endpoint="sendMessage")
        ...
        await fake.wait_for(lambda: len(fake.requests) == 3)
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

FAILURE = web.RequestKey("fail_next error", str)  # where `error()` finds the error code given to `fail_next`


@dataclass
class Recorded:
    """One request the server received, and what it answered (None while it hangs)."""

    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    body: bytes
    headers: dict[str, str]
    status: int | None = None


@dataclass
class _Failure:
    status: int
    endpoint: str | None
    error: str  # the provider's own error code, for its `error()` (Slack's "invalid_auth")


@dataclass
class _Plan:
    """Answers to come, in order: None lets a request through."""

    steps: list[_Failure | None] = field(default_factory=list)


class RecordingServer(abc.ABC):
    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[Recorded] = []
        self.down = False  # every request answered with `error(503)`
        self.dropping = False  # every connection dropped with no answer: the client sees a network error
        self._plan = _Plan()
        self._not_hanging = asyncio.Event()
        self._not_hanging.set()
        self._changed = asyncio.Condition()
        self._runners: list[web.AppRunner] = []
        self._http: aiohttp.ClientSession | None = None

    # --- what a provider adds

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The provider's methods that our adapters, and the SDKs they use, call."""

    @abc.abstractmethod
    def error(self, status: int, request: web.Request) -> web.StreamResponse:
        """The provider's answer for a failure with this HTTP status (its error body, Retry-After)."""

    def endpoint(self, request: web.Request) -> str:
        """The name `fail_next(endpoint=...)` matches: the last part of the path by default."""
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    # --- controls

    @property
    def hang(self) -> bool:
        """While set, requests are held open with no answer: the client has to time out."""
        return not self._not_hanging.is_set()

    @hang.setter
    def hang(self, value: bool) -> None:
        if value:
            self._not_hanging.clear()
        else:
            self._not_hanging.set()

    def fail_next(
        self, n: int = 1, status: int = 500, *, endpoint: str | None = None, after: int = 0, error: str = ""
    ) -> None:
        """The next `n` requests (to `endpoint`, if given), once `after` more went through, are answered
        `status` in the provider's error format; `error` is a provider's error code for them, which
        `error()` finds as `request[FAILURE]`."""
        self._plan.steps += [None] * after + [_Failure(status, endpoint, error)] * n

    def of(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    async def wait_for(self, predicate: Callable[..., object], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds (or `predicate(fake)`, for one that takes the fake), checked
        when each request arrives and when it is answered; TimeoutError otherwise."""
        takes_fake = bool(inspect.signature(predicate).parameters)
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: bool(predicate(self) if takes_fake else predicate()))

    @property
    def http(self) -> aiohttp.ClientSession:
        """A client for what the provider sends to the bot (webhooks, callbacks)."""
        assert self._http is not None, f"use {type(self).__name__} as an async context manager"
        return self._http

    # --- serving

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        self.base_url = await self.serve(app)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang = False  # let held requests finish so the runners can stop
        if self._http is not None:
            await self._http.close()
        for runner in reversed(self._runners):
            await runner.cleanup()

    async def serve(self, app: web.Application) -> str:
        """Serve one more app (a provider's separate host, such as a media store); its base URL."""
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def changed(self) -> None:
        """Wake `wait_for` (for state that changes without a request)."""
        async with self._changed:
            self._changed.notify_all()

    def _failure_for(self, endpoint: str) -> _Failure | None:
        for index, step in enumerate(self._plan.steps):
            if step is None or step.endpoint in (None, endpoint):
                del self._plan.steps[index]
                return step
        return None

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        endpoint = self.endpoint(request)
        recorded = Recorded(
            request.method,
            request.path,
            endpoint,
            dict(request.query),
            await request.read(),
            dict(request.headers),
        )
        self.requests.append(recorded)
        await self.changed()  # a request held by `hang` can be waited for too
        try:
            await self._not_hanging.wait()
            if self.dropping and request.transport is not None:
                request.transport.abort()
                recorded.status = 0  # no answer at all
                return web.Response(status=503)  # written to a closed connection: nobody reads it
            failure = _Failure(503, None, "") if self.down else self._failure_for(endpoint)
            if failure is not None:
                request[FAILURE] = failure.error
            response: web.StreamResponse = (
                self.error(failure.status, request) if failure is not None else await handler(request)
            )
            recorded.status = response.status
            return response
        finally:
            await self.changed()
