"""catalog: which rows are shipping methods; localized names (CSV store-view rows) in the encoded params

``shipping_method`` tells a shipping method's row (SKU = method code) from a store product's, so that neither
overwrites the other. ``localized_names`` (locale → name, from CSV store-view rows through OMS_STORE_VIEW_LOCALES)
are sent after the default name in ``name[]``; the params encoder and its trigger take them. A row without localized
names encodes to the same text as before, so the kept encodings stay valid.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The params exactly as app/mappers/product_to_mcom.py encodes them (encode(product_params(...))), localized names
# included: after the default name, in code point order of their locale (COLLATE "C": byte order of UTF-8, which is
# code point order, as Python's sort), the default locale's left out. tests/integration/test_catalog_sql_params.py
# holds the two byte-equal. Simple expressions, and the loop over localized names only for rows that have some.
PARAMS_FUNCTION = """
CREATE FUNCTION catalog_product_params(
    product_type text, sku text, name text, enabled boolean, deleted boolean, children_skus text[],
    custom_attributes jsonb, localized_names jsonb, attributes text[], locale text
) RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    code text;
    listed text := '';
    names text := '';
    entry record;
BEGIN
    FOREACH code IN ARRAY attributes LOOP
        IF custom_attributes ? code THEN
            listed := listed || CASE WHEN listed = '' THEN '' ELSE ',' END
                || '{"attribute_code":' || to_json(code)::text
                || ',"value":' || to_json(custom_attributes ->> code)::text || '}';
        END IF;
    END LOOP;
    IF localized_names IS NOT NULL AND localized_names <> '{}'::jsonb THEN
        FOR entry IN SELECT e.key, e.value FROM jsonb_each_text(localized_names) AS e
                      WHERE e.key <> locale ORDER BY e.key COLLATE "C" LOOP
            names := names || ',{"value":' || to_json(entry.value)::text
                || ',"locale":' || to_json(entry.key)::text || '}';
        END LOOP;
    END IF;
    RETURN '{"product":{"type":' || to_json(product_type)::text
        || ',"sku":' || to_json(sku)::text
        || ',"name":[{"value":' || to_json(name)::text
        || ',"locale":' || to_json(locale)::text
        || '}' || names || '],"enabled":' || CASE WHEN enabled AND NOT deleted THEN 'true' ELSE 'false' END
        || ',"custom_attributes":[' || listed
        || '],"children_skus":'
        || CASE WHEN product_type IN ('configurable', 'bundle', 'grouped')
                THEN coalesce(to_json(children_skus)::text, '[]') ELSE '[]' END
        || '}}';
END
$$
"""

# 0008's encoder, restored by the downgrade.
PARAMS_FUNCTION_0008 = """
CREATE FUNCTION catalog_product_params(
    product_type text, sku text, name text, enabled boolean, deleted boolean, children_skus text[],
    custom_attributes jsonb, attributes text[], locale text
) RETURNS text LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    code text;
    listed text := '';
BEGIN
    FOREACH code IN ARRAY attributes LOOP
        IF custom_attributes ? code THEN
            listed := listed || CASE WHEN listed = '' THEN '' ELSE ',' END
                || '{"attribute_code":' || to_json(code)::text
                || ',"value":' || to_json(custom_attributes ->> code)::text || '}';
        END IF;
    END LOOP;
    RETURN '{"product":{"type":' || to_json(product_type)::text
        || ',"sku":' || to_json(sku)::text
        || ',"name":[{"value":' || to_json(name)::text
        || ',"locale":' || to_json(locale)::text
        || '}],"enabled":' || CASE WHEN enabled AND NOT deleted THEN 'true' ELSE 'false' END
        || ',"custom_attributes":[' || listed
        || '],"children_skus":'
        || CASE WHEN product_type IN ('configurable', 'bundle', 'grouped')
                THEN coalesce(to_json(children_skus)::text, '[]') ELSE '[]' END
        || '}}';
END
$$
"""

# 0008's trigger function with the encoder's arguments as ``{arguments}``: the same reading of the settings in force.
TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION catalog_product_encode() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    encoding text := current_setting('oms.catalog_encoding', true);
    attributes text[];
    locale text;
BEGIN
    IF encoding IS NULL OR encoding = '' THEN
        attributes := ARRAY(SELECT e.code
                              FROM catalog_setting s, jsonb_array_elements_text(s.value) WITH ORDINALITY AS e(code, n)
                             WHERE s.key = 'product_attributes' AND jsonb_typeof(s.value) = 'array'
                             ORDER BY e.n);
        locale := (SELECT value #>> '{{}}' FROM catalog_setting WHERE key = 'product_locale');
        IF locale IS NULL OR NOT EXISTS (SELECT FROM catalog_setting WHERE key = 'product_attributes') THEN
            encoding := 'none';
        ELSE
            encoding := catalog_product_encoding(attributes, locale);
            PERFORM set_config('oms.catalog_attributes', attributes::text, true);
            PERFORM set_config('oms.catalog_locale', locale, true);
        END IF;
        PERFORM set_config('oms.catalog_encoding', encoding, true);
    ELSIF encoding <> 'none' THEN
        attributes := current_setting('oms.catalog_attributes')::text[];
        locale := current_setting('oms.catalog_locale');
    END IF;
    IF encoding = 'none' THEN
        NEW.params := NULL;
        NEW.fingerprint := NULL;
        NEW.encoded_for := NULL;
    ELSE
        NEW.params := catalog_product_params({arguments}, attributes, locale);
        NEW.fingerprint := encode(sha256(convert_to(NEW.params, 'UTF8')), 'hex');
        NEW.encoded_for := encoding;
    END IF;
    RETURN NEW;
END
$$
"""
ARGUMENTS = (
    "NEW.type, NEW.sku, NEW.name, NEW.enabled, NEW.deleted, NEW.children_skus, NEW.custom_attributes, "
    "NEW.localized_names"
)
ARGUMENTS_0008 = "NEW.type, NEW.sku, NEW.name, NEW.enabled, NEW.deleted, NEW.children_skus, NEW.custom_attributes"

TRIGGER = """
CREATE TRIGGER catalog_product_encode
BEFORE INSERT OR UPDATE OF type, sku, name, enabled, deleted, children_skus, custom_attributes{more} ON catalog_product
FOR EACH ROW EXECUTE FUNCTION catalog_product_encode()
"""

OLD_SIGNATURE = "catalog_product_params(text, text, text, boolean, boolean, text[], jsonb, text[], text)"
NEW_SIGNATURE = "catalog_product_params(text, text, text, boolean, boolean, text[], jsonb, jsonb, text[], text)"

# The shipping methods in force are the stored setting's; their rows (virtual, no Adobe Commerce id, no children,
# no attributes: what the connector wrote for them) are marked. A row a product took over stays a product.
MARK_SHIPPING_METHODS = """
UPDATE catalog_product p SET shipping_method = true
  FROM catalog_setting s, jsonb_array_elements(s.value) AS m(method)
 WHERE s.key = 'shipping_methods' AND jsonb_typeof(s.value) = 'array' AND jsonb_typeof(m.method) = 'object'
   AND p.sku = m.method ->> 'code' AND p.type = 'virtual' AND p.product_id IS NULL
   AND p.children_skus = '{}' AND p.custom_attributes = '{}'::jsonb
"""


def upgrade() -> None:
    op.add_column(
        "catalog_product", sa.Column("shipping_method", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column(
        "catalog_product",
        sa.Column(
            "localized_names",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_catalog_product_shipping_method",
        "catalog_product",
        ["sku"],
        unique=False,
        postgresql_where=sa.text("shipping_method"),
    )
    op.execute(MARK_SHIPPING_METHODS)  # fires no trigger: no field the OMS receives changes
    op.execute("DROP TRIGGER catalog_product_encode ON catalog_product")
    op.execute(PARAMS_FUNCTION)
    op.execute(TRIGGER_FUNCTION.format(arguments=ARGUMENTS))
    op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
    op.execute(TRIGGER.format(more=", localized_names"))


def downgrade() -> None:
    op.execute("DROP TRIGGER catalog_product_encode ON catalog_product")
    op.execute(PARAMS_FUNCTION_0008)
    op.execute(TRIGGER_FUNCTION.format(arguments=ARGUMENTS_0008))
    op.execute(f"DROP FUNCTION {NEW_SIGNATURE}")
    op.execute(TRIGGER.format(more=""))
    # Localized names are dropped: rows that had some keep params encoded with them until they next change (a full
    # export of 0008 re-encodes rows only for other settings); they are left unencoded here so that 0008's export
    # encodes them as it reads them.
    op.execute(
        "UPDATE catalog_product SET params = NULL, fingerprint = NULL, encoded_for = NULL "
        "WHERE localized_names <> '{}'::jsonb"
    )
    op.drop_index(
        "ix_catalog_product_shipping_method", table_name="catalog_product", postgresql_where=sa.text("shipping_method")
    )
    op.drop_column("catalog_product", "localized_names")
    op.drop_column("catalog_product", "shipping_method")
