"""The data layer: every SQL statement the connector runs, by concern, and the outbox writer.

Services and workers import from here; this package imports only the standard library, SQLAlchemy, app/models.py
and app/protocol/ (pyproject.toml ``[tool.importlinter]`` holds it to that). Statements are SQLAlchemy ``text()``
with named parameters (``positional`` in sql.py turns one into plain asyncpg's ``$n``), each with a comment saying
what it is for; status predicates are built from ``Status`` (statuses.py).

  bus.py             store messages, claim lane heads, record outcomes, release waiting messages, wake the workers
  outbox.py          the outbox writer (NewMessage, Outbox, insert_messages) and the leased OutboundMessage
  journal.py         an operator's retry and discard (one or a batch), journal retention (prune)
  monitoring.py      backlog, failures and blocked lanes (/integration), the gauges of GET /metrics
  stock.py           stock snapshots applied with the timestamp filter, source items queued, stock reset
  orders.py          posted orders, their export and export status, the order list, `orders sync`, the order gate
  lifecycle.py       what the OMS says after the export, the store's cancel and return requests, the order view
  catalog.py         catalog settings and products, what was exported last (change detection)
  catalog_export.py  the catalog export: one at a time, leased, batches encoded in PostgreSQL, progress
  catalog_import.py  CSV rows merged into the catalog
  reports.py         the processing-time report: rollup into minute and hour rows, the report itself
  statuses.py        named sets of message statuses as SQL lists (PENDING, FINISHED, …)
  sql.py             positional(): a named statement for plain asyncpg
"""
