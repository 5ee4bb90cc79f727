"""The effective configuration as an operator may see it: every setting by its environment variable, secrets masked.

Masked: every ``SecretStr`` setting, every setting (and every key inside a JSON setting) whose name holds one of
SECRET_WORDS, and the password of any URL (DATABASE_URL's above all). A masked value says only whether it is set —
not its length, not a prefix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from app.settings import Settings

SECRET_WORDS = ("token", "secret", "password", "passwd", "credential", "api_key", "apikey", "private_key")
MASK = "••••••"
SET = f"{MASK} (set)"
NOT_SET = "(not set)"


class SettingView(BaseModel):
    """One setting as shown: its variable, its value (masked where secret) and whether it was given or defaulted."""

    variable: str
    value: str
    masked: bool
    given: bool  # set in the environment, .env or by the caller; False: the default


def effective_settings(settings: Settings) -> list[SettingView]:
    """Every setting in the order app/settings.py declares them."""
    views: list[SettingView] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if is_secret_name(name) or (_is_secret_type(field.annotation) and not _is_url(value)):
            shown, masked = (NOT_SET if _empty(value) else SET), True
        else:
            shown, masked = _show(value)  # DATABASE_URL: where it points, its password masked
        views.append(
            SettingView(variable=name.upper(), value=shown, masked=masked, given=name in settings.model_fields_set)
        )
    return views


def is_secret_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in SECRET_WORDS)


def mask_url(url: str) -> str:
    """``url`` with its password and any secret-named query parameter (libpq takes ``?password=``) replaced by the
    mask; anything else of it (an empty host too) is kept as written, and anything not a URL comes back as it is."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK if "@" in url or "?" in url else url  # unreadable: do not risk showing a password
    if not password and not any(is_secret_name(unquote(pair.partition("=")[0])) for pair in parts.query.split("&")):
        return url
    netloc = parts.netloc
    if password:
        netloc = f"{parts.username or ''}:{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{key}={MASK}" if is_secret_name(unquote(key)) else f"{key}{eq}{value}"
        for key, eq, value in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + (f"?{query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _show(value: Any) -> tuple[str, bool]:
    """The text shown for a value that is not secret by its name; True when something in it was masked."""
    if value is None:
        return NOT_SET, False
    if isinstance(value, SecretStr):  # a URL (DATABASE_URL): where it points is useful, its password is not shown
        raw = value.get_secret_value()
        return mask_url(raw), True
    if isinstance(value, BaseModel | list | tuple | dict):
        cleaned, masked = _clean(value)
        return json.dumps(cleaned, ensure_ascii=False, default=str), masked
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, Path):
        return str(value), False
    text = str(value)
    shown = mask_url(text) if "://" in text else text
    return shown, shown != text


def _clean(value: Any) -> tuple[Any, bool]:
    """A JSON value with every secret-named key masked and every URL's password masked."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, SecretStr):
        return (MASK if value.get_secret_value() else ""), True
    if isinstance(value, Mapping):
        masked = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_name(str(key)):
                out[str(key)] = MASK
                masked = True
            else:
                out[str(key)], inner = _clean(item)
                masked = masked or inner
        return out, masked
    if isinstance(value, list | tuple | set | frozenset):
        cleaned = [_clean(item) for item in value]
        return [item for item, _ in cleaned], any(inner for _, inner in cleaned)
    if isinstance(value, str) and "://" in value:
        shown = mask_url(value)
        return shown, shown != value
    return value, False


def _is_url(value: Any) -> bool:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return isinstance(raw, str) and "://" in raw


def _is_secret_type(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, SecretStr):
        return not value.get_secret_value()
    return not value
