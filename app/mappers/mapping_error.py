"""The one error the order mappers raise: the order cannot be mapped as it is (answered 422 naming the field)."""

from __future__ import annotations


class MappingError(ValueError):
    """The order cannot be mapped as it is; ``field`` names the part of the order at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
