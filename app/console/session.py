"""The console's sign-in: a signed session cookie, the role it grants, and its CSRF token.

The cookie holds ``{"role", "csrf"}`` signed (itsdangerous, HMAC-SHA256) with a key derived from the tokens that can
sign in, and stamped with its time: it expires after CONSOLE_SESSION_HOURS, and changing either token ends every
session at once (the key changes), on every replica alike (no server-side store). HttpOnly, SameSite=Strict, Secure
when the request came over HTTPS. The CSRF token is random per sign-in; every state-changing form carries it and it
is compared in constant time (SameSite=Strict alone would leave older browsers and same-site pages a way in).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr

from app.settings import Settings

COOKIE = "oms_console"
_SALT = "oms-connector console session"


class Role(StrEnum):
    OPERATOR = "operator"  # sees and changes everything the operator API allows
    READONLY = "readonly"  # sees everything, changes nothing (OPERATOR_READONLY_TOKEN)


@dataclass(frozen=True)
class ConsoleSession:
    role: Role
    csrf: str

    @property
    def can_change(self) -> bool:
        return self.role is Role.OPERATOR

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


class SessionCodec:
    """Signs and reads the session cookie; says which role a token grants."""

    def __init__(self, settings: Settings) -> None:
        self._tokens: list[tuple[Role, str]] = [
            (role, token.get_secret_value())
            for role, token in (
                (Role.OPERATOR, settings.operator_token),
                (Role.READONLY, settings.operator_readonly_token),
            )
            if isinstance(token, SecretStr)
        ]
        self.max_age_s = int(settings.console_session_hours * 3600)
        key = hashlib.sha256(b"\0".join(token.encode() for _, token in self._tokens) or secrets.token_bytes(32))
        self._serializer = URLSafeTimedSerializer(key.hexdigest(), salt=_SALT)
        self.flash_key = hashlib.sha256(b"flash\0" + key.digest()).hexdigest()  # one-time notices after a post

    @property
    def enabled(self) -> bool:
        """No token configured: nobody can sign in."""
        return bool(self._tokens)

    def role_for(self, token: str) -> Role | None:
        """The role ``token`` grants, compared in constant time against every configured token."""
        given = token.strip().encode()
        found: Role | None = None
        for role, expected in self._tokens:
            if hmac.compare_digest(given, expected.encode()) and found is None:
                found = role
        return found

    def issue(self, role: Role) -> tuple[ConsoleSession, str]:
        session = ConsoleSession(role=role, csrf=secrets.token_urlsafe(32))
        return session, self._serializer.dumps({"role": role.value, "csrf": session.csrf})

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie holds, or None when it is missing, forged, expired or from before a token change."""
        if not cookie or len(cookie) > 1024:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except BadSignature:  # SignatureExpired is one too
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        try:
            return ConsoleSession(role=Role(data.get("role")), csrf=data["csrf"])
        except ValueError:
            return None
