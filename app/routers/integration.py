"""/integration — the link with the OMS: status, register, unregister, enable, disable (operator token)."""

from __future__ import annotations

from typing import Any

from app.deps import OperatorAuth, RuntimeDep
from app.routers.route import api_router
from app.services.integration_status import IntegrationStatus, integration_status

router = api_router(prefix="/integration", tags=["integration"], dependencies=[OperatorAuth])


@router.get("", response_model=IntegrationStatus)
async def get_integration(runtime: RuntimeDep) -> IntegrationStatus:
    """Registration, enabled, signature mode (and its warning), OMS reachability and token state, last messages,
    and the backlog per topic with the blocked lanes."""
    return await integration_status(
        db=runtime.db,
        settings=runtime.settings,
        switch=runtime.switch,
        registrar=runtime.registrar,
        client=runtime.client,
    )


@router.post("/register")
async def register(runtime: RuntimeDep) -> dict[str, Any]:
    """Send magento.service_bus.remote.register with our callback URL, secret, version and labels."""
    return await runtime.registrar.register()


@router.post("/unregister")
async def unregister(runtime: RuntimeDep) -> dict[str, Any]:
    """Send magento.service_bus.remote.unregister."""
    return await runtime.registrar.unregister()


@router.post("/disable")
async def disable(runtime: RuntimeDep) -> dict[str, bool]:
    """Stop accepting OMS calls (503, the OMS will retry) and hold outbound messages (kept, not sent)."""
    await runtime.switch.set_enabled(False)
    return {"enabled": False}


@router.post("/enable")
async def enable(runtime: RuntimeDep) -> dict[str, bool]:
    """Accept OMS calls and send held messages again."""
    await runtime.switch.set_enabled(True)
    return {"enabled": True}
