"""catalog: each product's params kept encoded (a trigger), the exported fingerprints in a narrow table

A full export then reads the requests it sends instead of encoding a million products, and records what the OMS
acknowledged without rewriting the wide product rows.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The params exactly as app/mappers/product_to_mcom.py encodes them (encode(product_params(...)));
# tests/integration/test_catalog_sql_params.py holds the two byte-equal. PL/pgSQL made of simple expressions: the
# trigger runs it for every row written, and a SQL function with a subquery cost three times as much per call.
PARAMS_FUNCTION = """
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

# What the kept params were encoded for: the configured attributes and the locale.
ENCODING_FUNCTION = """
CREATE FUNCTION catalog_product_encoding(attributes text[], locale text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT md5(to_jsonb(attributes)::text || ' ' || to_jsonb(locale)::text) $$
"""

# Every write of a field the OMS receives re-encodes the row with the settings in force (catalog_setting:
# product_attributes, product_locale, both written at start-up), read once per transaction (kept in
# transaction-local settings: a lookup per row cost more than the encoding). Without them the row is left
# unencoded. Whatever this trigger kept, a full export uses it only when ``encoded_for`` names its own settings, and
# encodes the row as it reads it otherwise: a stale encoding is never sent.
TRIGGER_FUNCTION = """
CREATE FUNCTION catalog_product_encode() RETURNS trigger LANGUAGE plpgsql AS $$
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
        locale := (SELECT value #>> '{}' FROM catalog_setting WHERE key = 'product_locale');
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
        NEW.params := catalog_product_params(
            NEW.type, NEW.sku, NEW.name, NEW.enabled, NEW.deleted, NEW.children_skus, NEW.custom_attributes,
            attributes, locale);
        NEW.fingerprint := encode(sha256(convert_to(NEW.params, 'UTF8')), 'hex');
        NEW.encoded_for := encoding;
    END IF;
    RETURN NEW;
END
$$
"""

TRIGGER = """
CREATE TRIGGER catalog_product_encode
BEFORE INSERT OR UPDATE OF type, sku, name, enabled, deleted, children_skus, custom_attributes ON catalog_product
FOR EACH ROW EXECUTE FUNCTION catalog_product_encode()
"""


def upgrade() -> None:
    op.add_column("catalog_product", sa.Column("params", sa.Text(), nullable=True))
    op.add_column("catalog_product", sa.Column("fingerprint", sa.Text(), nullable=True))
    op.add_column("catalog_product", sa.Column("encoded_for", sa.Text(), nullable=True))
    # Half-full pages: a re-export that changes every fingerprint updates in place (HOT), no index entry per row.
    op.create_table(
        "catalog_product_exported",
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_catalog_product_exported")),
        postgresql_with={"fillfactor": 50},
    )
    op.execute(
        "INSERT INTO catalog_product_exported (sku, fingerprint) "
        "SELECT sku, exported_fingerprint FROM catalog_product WHERE exported_fingerprint IS NOT NULL"
    )
    op.drop_column("catalog_product", "exported_fingerprint")
    for statement in (PARAMS_FUNCTION, ENCODING_FUNCTION, TRIGGER_FUNCTION, TRIGGER):
        op.execute(statement)
    # Rows stored before this revision are encoded at their next change (the settings they need are written at
    # start-up); until then a full export encodes them as it reads them.


def downgrade() -> None:
    op.execute("DROP TRIGGER catalog_product_encode ON catalog_product")
    op.execute("DROP FUNCTION catalog_product_encode()")
    op.execute("DROP FUNCTION catalog_product_encoding(text[], text)")
    op.execute("DROP FUNCTION catalog_product_params(text, text, text, boolean, boolean, text[], jsonb, text[], text)")
    op.add_column("catalog_product", sa.Column("exported_fingerprint", sa.Text(), nullable=True))
    op.execute(
        "UPDATE catalog_product p SET exported_fingerprint = e.fingerprint "
        "FROM catalog_product_exported e WHERE e.sku = p.sku"
    )
    op.drop_table("catalog_product_exported")
    op.drop_column("catalog_product", "encoded_for")
    op.drop_column("catalog_product", "fingerprint")
    op.drop_column("catalog_product", "params")
