"""The integration switch and registration with the OMS (what /integration shows: integration_status.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from app import __version__
from app.clients.oms import OmsClient
from app.clock import Clock
from app.data.bus import NOTIFY_BUS
from app.db import Database
from app.errors import ConnectorError, NotConfigured, PeerError
from app.models import Direction, IntegrationState, Message, Status
from app.protocol.methods import REGISTER, UNREGISTER
from app.protocol.references import extract_references
from app.settings import Settings

log = logging.getLogger(__name__)

ENABLED_CACHE_S = 1.0  # other replicas see an enable/disable within this long
REGISTER_RETRY_MIN_S = 15.0
REGISTER_RETRY_MAX_S = 600.0
REDACTED = "***"


class IntegrationSwitch:
    """Whether the integration is enabled; the flag lives in the database so every replica obeys it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._cached: tuple[float, bool] | None = None
        self._refresh_lock = asyncio.Lock()

    async def is_enabled(self) -> bool:
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._refresh_lock:  # one query per expiry, not one per request in flight
            cached = self._fresh()
            if cached is not None:
                return cached
            async with self.db.connect() as connection:
                statement = select(IntegrationState.enabled).where(IntegrationState.id == 1)
                enabled = (await connection.execute(statement)).scalar()
            value = True if enabled is None else bool(enabled)
            self._cached = (time.monotonic(), value)
            return value

    def _fresh(self) -> bool | None:
        """The cached flag while it is fresh, else None."""
        if self._cached is None or time.monotonic() - self._cached[0] >= ENABLED_CACHE_S:
            return None
        return self._cached[1]

    async def set_enabled(self, enabled: bool) -> None:
        async with self.db.connect() as connection:
            await connection.execute(
                update(IntegrationState)
                .where(IntegrationState.id == 1)
                .values(enabled=enabled, changed_at=self.clock.now())
            )
            if enabled:
                await connection.execute(NOTIFY_BUS)  # held outbound messages may go now
        self._cached = (time.monotonic(), enabled)


class Registrar:
    """Registers this connector's callback URL with the OMS (magento.service_bus.remote.register)."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, client: OmsClient | None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.client = client

    def _require(self) -> tuple[OmsClient, str]:
        if self.client is None:
            raise NotConfigured("the OMS is not configured (OMS_URL)")
        if self.settings.callback_url is None:
            raise NotConfigured("OMS_APPLICATION_BASE_URL is not set, so there is no callback URL to register")
        return self.client, self.settings.callback_url

    def register_params(self, url: str) -> dict[str, Any]:
        return {
            "id": self.settings.oms_application_id,
            "url": url,
            "secret": self.settings.oms_secret.get_secret_value(),
            "version": __version__,
            "labels": self.settings.oms_labels,
        }

    async def state(self) -> IntegrationState:
        async with self.db.sessions() as session:
            state = await session.get(IntegrationState, 1)
            if state is None:
                raise ConnectorError("integration_state is missing: run the migrations")
            return state

    async def is_current(self) -> bool:
        state = await self.state()
        return (
            state.registered_url == self.settings.callback_url
            and state.registered_version == __version__
            and state.registered_application_id == self.settings.oms_application_id
        )

    async def register(self) -> dict[str, Any]:
        """Register now (unregistering first if we were registered: the PHP peer keeps the old row otherwise)."""
        client, url = self._require()
        state = await self.state()
        if state.registered_at is not None:
            try:
                await self._call(
                    client, UNREGISTER, {"id": state.registered_application_id or self.settings.oms_application_id}
                )
            except PeerError as exc:  # the Go peer has no unregister; registering must still go on
                log.info("unregister before register failed: %s", exc, extra={"action": "unregister_failed"})
        now = self.clock.now()
        try:
            result = await self._call(client, REGISTER, self.register_params(url))
        except PeerError as exc:
            await self._save(register_error=exc.message, register_attempted_at=now)
            raise
        await self._save(
            registered_url=url,
            registered_version=__version__,
            registered_application_id=self.settings.oms_application_id,
            registered_at=now,
            register_error=None,
            register_attempted_at=now,
        )
        log.info("registered with the OMS", extra={"action": "registered", "url": url})
        return {"registered": True, "url": url, "version": __version__, "result": result}

    async def unregister(self) -> dict[str, Any]:
        client, _url = self._require()
        result = await self._call(client, UNREGISTER, {"id": self.settings.oms_application_id})
        await self._save(
            registered_url=None,
            registered_version=None,
            registered_application_id=None,
            registered_at=None,
            register_error=None,
            register_attempted_at=self.clock.now(),
        )
        return {"registered": False, "result": result}

    async def keep_registered(self) -> None:
        """At start-up: register when this URL + version is not registered yet; retry until it works.
        Never raises (a failure shows in /integration)."""
        delay = REGISTER_RETRY_MIN_S
        while True:
            try:
                if await self.is_current():
                    return
                await self.register()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("registration failed, will retry: %s", exc, extra={"action": "register_retry"})
            await asyncio.sleep(delay)
            delay = min(REGISTER_RETRY_MAX_S, delay * 2)

    async def _call(self, client: OmsClient, method: str, params: dict[str, Any]) -> Any:
        """Call inline and journal the call (secret redacted) with its outcome."""
        # A random part: two calls in the same millisecond (two replicas, two operators) must not share an id.
        request_id = f"{self.settings.oms_application_id}-{method.rsplit('.', 1)[-1]}-{uuid.uuid4()}"
        started_at = self.clock.now()
        started = time.monotonic()
        error: PeerError | None = None
        result: Any = None
        try:
            result = await client.call(method, params, request_id)
        except PeerError as exc:
            error = exc
        journaled = {**params, "secret": REDACTED} if "secret" in params else params
        await self._journal(method, request_id, journaled, started_at, started, result, error)
        if error is not None:
            raise error
        return result

    async def _journal(
        self,
        method: str,
        request_id: str,
        params: dict[str, Any],
        started_at: datetime,
        started: float,
        result: Any,
        error: PeerError | None,
    ) -> None:
        now = self.clock.now()
        async with self.db.sessions() as session, session.begin():
            session.add(
                Message(
                    direction=Direction.OUT,
                    channel="oms",
                    topic=method,
                    external_id=request_id,
                    lane=method,
                    payload=params,
                    headers={},
                    refs=extract_references(params),
                    status=Status.FAILED if error else Status.SUCCEEDED,
                    attempts=1,
                    last_error=error.message if error else None,
                    result=None if error else {"result": json.loads(json.dumps(result, default=str))},
                    next_attempt_at=now,
                    first_attempt_at=started_at,
                    created_at=started_at,
                    started_at=started_at,
                    finished_at=now,
                    duration_ms=int((time.monotonic() - started) * 1000),
                )
            )

    async def _save(self, **values: Any) -> None:
        async with self.db.connect() as connection:
            await connection.execute(update(IntegrationState).where(IntegrationState.id == 1).values(**values))
