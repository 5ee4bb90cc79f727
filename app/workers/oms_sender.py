"""Delivers outbound messages of the ``oms`` channel with the OMS client: one call per message (the default,
what the known peers accept; the bus sends a claim's messages concurrently), or one JSON-RPC batch request per
claim (OMS_SEND_MODE=rpc-batch). The params go on the wire as the outbox stored them (never decoded here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.clients.oms import OmsClient, RpcCall
from app.data.outbox import OutboundMessage
from app.errors import PeerError

# Single mode: lane heads one claim leases and the bus sends at once. Sixteen senders (OUTBOUND_WORKERS) times this
# stays within the client's connection pool (app/clients/oms.py MAX_CONNECTIONS), so no call waits for a connection.
SINGLE_CLAIM = 4


class OmsSender:
    def __init__(self, client: OmsClient, *, mode: str = "single", batch_size: int = 100) -> None:
        self.client = client
        self.mode = mode
        self.one_request = mode != "single"
        self.batch_size = SINGLE_CLAIM if mode == "single" else batch_size

    async def deliver(self, messages: Sequence[OutboundMessage]) -> list[Any | PeerError]:
        if self.mode == "single":
            outcomes: list[Any | PeerError] = []
            for message in messages:
                try:
                    outcomes.append(
                        await self.client.call(
                            message.topic, None, message.external_id, encoded_params=message.encoded_payload
                        )
                    )
                except PeerError as exc:
                    outcomes.append(exc)
            return outcomes
        by_id = await self.client.call_batch(
            [RpcCall(id=m.external_id, method=m.topic, encoded_params=m.encoded_payload) for m in messages]
        )
        return [by_id[m.external_id] for m in messages]
