"""Delivers outbound messages of the ``oms`` channel with the OMS client: one call per message (the default,
what the known peers accept), or one JSON-RPC batch request per claim (OMS_SEND_MODE=rpc-batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.clients.oms import OmsClient, RpcCall
from app.data.outbox import OutboundMessage
from app.errors import PeerError


class OmsSender:
    def __init__(self, client: OmsClient, *, mode: str = "single", batch_size: int = 100) -> None:
        self.client = client
        self.mode = mode
        self.batch_size = 1 if mode == "single" else batch_size

    async def deliver(self, messages: Sequence[OutboundMessage]) -> list[Any | PeerError]:
        if self.mode == "single":
            outcomes: list[Any | PeerError] = []
            for message in messages:
                try:
                    outcomes.append(await self.client.call(message.topic, message.payload, message.external_id))
                except PeerError as exc:
                    outcomes.append(exc)
            return outcomes
        by_id = await self.client.call_batch(
            [RpcCall(id=m.external_id, method=m.topic, params=m.payload) for m in messages]
        )
        return [by_id[m.external_id] for m in messages]
