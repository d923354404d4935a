"""The reverse proxies' client (/lab, /dash) never replays one caller's upstream cookie to another."""

from __future__ import annotations

import asyncio

import httpx

from coflows.server.upstream import upstream_client


def test_upstream_cookies_are_not_kept_between_callers() -> None:
    seen: list[str | None] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=alice-secret; Path=/"})

    async def two_callers() -> None:
        client = upstream_client()
        client._transport = httpx.MockTransport(app)  # the network part only: the jar under test is the client's
        async with client:
            first = await client.get("http://127.0.0.1:9/lab/")
            assert first.headers["set-cookie"].startswith("session=alice-secret")  # passed on to the browser
            await client.get("http://127.0.0.1:9/lab/")  # the next caller

    asyncio.run(two_callers())
    assert seen == [None, None]
    assert len(upstream_client().cookies.jar) == 0
