"""The full export's params encoded by PostgreSQL are, byte for byte, what the Python mapper gives
(encode(product_params(...))), fingerprints included, both as the catalog trigger keeps them (migration 0008) and as
CATALOG_BATCH_ENCODED (app/data/catalog_export.py) encodes them when the settings changed since: product events
(Python) and full exports (SQL) must agree on what the OMS has, or every product would be exported again after a
full export. Localized names (CSV store-view rows) included: their order (code point order of the locale, whatever
the database's collation) and the default locale's left out."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.data.catalog_export import CATALOG_BATCH_ENCODED
from app.mappers.product_to_mcom import CatalogEntry, encode, fingerprint, product_params
from app.protocol.jsonrpc import encoded_request
from app.runtime import Runtime

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
CODES = ["color", "brand", "size"]
# Locales: a few real ones (so that a product's localized names often hold the default locale) and any text (so that
# their order is tested beyond ASCII: upper and lower case, accents, characters outside the BMP).
LOCALES = st.one_of(st.sampled_from(["en_US", "de_DE", "fr_FR", "de_AT", "Zz", "éa", "\U0001f600"]), TEXT.filter(bool))


@st.composite
def products(draw: Any) -> list[CatalogEntry]:
    skus = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=4, unique=True))
    return [
        CatalogEntry(
            sku=sku,
            type=draw(st.sampled_from(["simple", "virtual", "bundle", "configurable", "grouped"])),
            name=draw(TEXT),
            enabled=draw(st.booleans()),
            children_skus=draw(st.lists(TEXT, max_size=3)),
            custom_attributes=draw(st.dictionaries(st.sampled_from([*CODES, "other"]), TEXT, max_size=4)),
            deleted=draw(st.booleans()),
            localized_names=draw(st.dictionaries(LOCALES, TEXT, max_size=4)),
        )
        for sku in skus
    ]


async def read_batch(runtime: Runtime, attributes: list[str], locale: str) -> Any:
    async with runtime.db.connect() as connection:
        return (
            await connection.execute(
                CATALOG_BATCH_ENCODED,
                {
                    "after": "",
                    "limit": 10,
                    "attributes": attributes,
                    "locale": locale,
                    "id_prefix": "mdc-catalog-7-",
                    "method": "magento.catalog.product_management.updated",
                },
            )
        ).one()


def assert_encoded_as_python(batch: Any, by_sku: dict[str, CatalogEntry], attributes: list[str], locale: str) -> None:
    assert sorted(batch.skus) == sorted(by_sku)
    for sku, sent, recorded in zip(batch.skus, batch.calls, batch.fingerprints, strict=True):
        expected = encode(product_params(by_sku[sku], attributes, locale))
        call = encoded_request(f"mdc-catalog-7-{sku}", "magento.catalog.product_management.updated", expected)
        assert json.loads(sent) == json.loads(call)  # the same request (the id may be escaped differently)
        assert sent.endswith(f',"params":{expected}}}')  # and the params byte for byte
        assert recorded == fingerprint(expected)  # never exported: the fingerprint to record


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=products(), attributes=st.lists(st.sampled_from(CODES), unique=True), locale=LOCALES)
async def test_postgres_encodes_each_product_as_the_python_mapper_does(
    runtime: Runtime, raw: asyncpg.Connection, entries: list[CatalogEntry], attributes: list[str], locale: str
) -> None:
    await raw.execute("TRUNCATE catalog_product")
    settings_in_force = "UPDATE catalog_setting SET value = $2::jsonb WHERE key = $1"
    await raw.execute(settings_in_force, "product_attributes", json.dumps(attributes))
    await raw.execute(settings_in_force, "product_locale", json.dumps(locale))
    await raw.executemany(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, deleted, children_skus, custom_attributes,
                                     localized_names, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, now(), now())
        """,
        [
            (
                e.sku,
                e.type,
                e.name,
                e.enabled,
                e.deleted,
                list(e.children_skus),
                json.dumps(e.custom_attributes),
                json.dumps(e.localized_names),
            )
            for e in entries
        ],
    )
    by_sku = {entry.sku: entry for entry in entries}
    # kept by the trigger, for these settings
    kept = await raw.fetch("SELECT sku, params, fingerprint FROM catalog_product")
    for row in kept:
        assert row["params"] == encode(product_params(by_sku[row["sku"]], attributes, locale))
        assert row["fingerprint"] == fingerprint(row["params"])
    assert_encoded_as_python(await read_batch(runtime, attributes, locale), by_sku, attributes, locale)
    # read with other settings than the rows were kept for: encoded as they are read
    other_attributes, other_locale = list(reversed(CODES)), locale + "-x"
    batch = await read_batch(runtime, other_attributes, other_locale)
    assert_encoded_as_python(batch, by_sku, other_attributes, other_locale)


async def test_without_the_settings_in_force_a_row_is_left_unencoded_and_read_encoded_all_the_same(
    runtime: Runtime, raw: asyncpg.Connection
) -> None:
    await raw.execute("DELETE FROM catalog_setting WHERE key = 'product_locale'")  # a database no process seeded
    entry = CatalogEntry(sku="S-1", type="configurable", name="Mug", enabled=True, children_skus=["S-2"],
                         custom_attributes={"color": "blue"})  # fmt: skip
    await raw.execute(
        """
        INSERT INTO catalog_product (sku, type, name, enabled, children_skus, custom_attributes, created_at,
                                     updated_at)
        VALUES ('S-1', 'configurable', 'Mug', true, '{S-2}', '{"color": "blue"}', now(), now())
        """
    )
    kept = await raw.fetchrow("SELECT params, fingerprint, encoded_for FROM catalog_product WHERE sku = 'S-1'")
    assert tuple(kept) == (None, None, None)
    assert_encoded_as_python(await read_batch(runtime, ["color"], "de_DE"), {"S-1": entry}, ["color"], "de_DE")
