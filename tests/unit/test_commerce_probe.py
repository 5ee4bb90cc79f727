"""app/services/commerce_probe.py: the console's live check of Adobe Commerce is bounded in time and cached."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from app.clients.commerce import CommerceClient
from app.clock import FrozenClock
from app.services import commerce_probe
from app.services.commerce_probe import CommerceProbe

BASE = "http://shop.test/rest/all/V1"


def probe_with(handler: object) -> tuple[CommerceProbe, CommerceClient]:
    client = CommerceClient(
        base_url=BASE, token=SecretStr("store-token-0123456789"), transport=httpx.MockTransport(handler)
    )
    return CommerceProbe(client, BASE, FrozenClock()), client


async def test_a_store_that_does_not_answer_in_time_is_unreachable_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(commerce_probe, "PROBE_TIMEOUT_S", 0.05)

    async def hang(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"items": []})

    probe, client = probe_with(hang)
    started = asyncio.get_running_loop().time()
    status = await probe.status()
    await client.aclose()

    assert asyncio.get_running_loop().time() - started < 1
    assert (status.reachable, status.error) == (False, "no answer within 0.05 s")


async def test_the_answer_is_reused_while_fresh_and_concurrent_pages_share_one_call() -> None:
    calls: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        await asyncio.sleep(0.01)
        return httpx.Response(200, json={"items": [], "total_count": 0})

    probe, client = probe_with(answer)
    first = await asyncio.gather(*(probe.status() for _ in range(5)))
    again = await probe.status()
    await client.aclose()

    assert len(calls) == 1
    assert calls[0].url.path == "/rest/all/V1/invoices"
    assert calls[0].headers["authorization"] == "Bearer store-token-0123456789"
    assert all(status.reachable for status in [*first, again])


async def test_without_adobe_commerce_configured_nothing_is_called() -> None:
    status = await CommerceProbe(None, None, FrozenClock()).status()

    assert (status.configured, status.reachable) == (False, None)
