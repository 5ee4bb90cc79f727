"""/catalog — what operators set about products: the sourcing rule of each bundle."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import CommerceOrOperatorAuth, OperatorAuth, RuntimeDep
from app.schemas import SourcingRuleUpdate, SourcingRuleView

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("/bundles/{sku:path}/sourcing-rule", response_model=SourcingRuleView, dependencies=[CommerceOrOperatorAuth])
async def get_bundle_sourcing_rule(runtime: RuntimeDep, sku: str) -> SourcingRuleView:
    """How the OMS must source this bundle's items: its own rule, or OMS_BUNDLE_SOURCING_RULE."""
    return await runtime.orders.sourcing_rule(sku)


@router.put("/bundles/{sku:path}/sourcing-rule", response_model=SourcingRuleView, dependencies=[OperatorAuth])
async def put_bundle_sourcing_rule(runtime: RuntimeDep, sku: str, body: SourcingRuleUpdate) -> SourcingRuleView:
    """Set this bundle's rule (ship together | ship simultaneously | ship separately). Sent on the bundle's lines
    of orders exported from now on, overriding the OMS's generic sourcing rule."""
    return await runtime.orders.set_sourcing_rule(sku, body.rule)
