"""Extensions installed as Python packages, found through entry points (the seed's LineMapper plugin).

A package adds custom attributes to the OMS order lines by declaring, in its pyproject.toml::

    [project.entry-points."oms_connector.line_attributes"]
    gift_wrap = "my_package.oms:gift_wrap_attributes"

where ``gift_wrap_attributes(order, item, line)`` receives the order and the item as Adobe Commerce sent them and
the unit line built so far, and returns ``[{"attribute_code": …, "value": …}, …]``. Plugins run in name order.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from app.mappers.order_to_mcom import LineAttributePlugin
from app.settings import ConfigurationError

LINE_ATTRIBUTES_GROUP = "oms_connector.line_attributes"


def load_line_attribute_plugins() -> list[tuple[str, LineAttributePlugin]]:
    """Every installed line-attribute plugin, by name. A plugin that cannot be loaded stops start-up: exporting
    orders without attributes a merchant relies on would be worse than not starting."""
    plugins: list[tuple[str, LineAttributePlugin]] = []
    for entry in sorted(entry_points(group=LINE_ATTRIBUTES_GROUP), key=lambda e: e.name):
        try:
            function = entry.load()
        except Exception as exc:
            problem = f"{exc.__class__.__name__}: {exc}"
            raise ConfigurationError(
                f"line-attribute plugin {entry.name!r} ({entry.value}) cannot be loaded: {problem}"
            ) from exc
        if not callable(function):
            raise ConfigurationError(f"line-attribute plugin {entry.name!r} ({entry.value}) is not callable")
        plugins.append((entry.name, function))
    return plugins
