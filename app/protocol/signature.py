"""The OMS's signature: an HMAC of the exact request body in `X-Signature: <algorithm>=<hex>` (protocol §2).

The known peers sign with HMAC-SHA1 (`sha1=`); `sha256=` is accepted too. Any of the configured secrets may
have signed it, so a secret can be rotated without a gap (OMS_SECRET, then OMS_SECRET_PREVIOUS).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from app.errors import SignatureInvalid

SIGNATURE_HEADER = "x-signature"
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def sign(body: bytes, secret: bytes, algorithm: str = "sha1") -> str:
    """The header value a peer holding ``secret`` would send for ``body``."""
    digest = hmac.new(secret, body, ALGORITHMS[algorithm]).hexdigest()
    return f"{algorithm}={digest}"


def verify(body: bytes, header: str | None, secrets: Sequence[bytes]) -> None:
    """Check ``header`` against ``body`` with each secret, in constant time.

    Raises:
        SignatureInvalid: with a short reason (missing, malformed, unknown algorithm, mismatch).
    """
    if not header:
        raise SignatureInvalid("missing X-Signature header")
    algorithm, sep, given = header.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if not sep or algorithm not in ALGORITHMS:
        raise SignatureInvalid("X-Signature must be sha1=<hex> or sha256=<hex>")
    if not secrets:
        raise SignatureInvalid("no signing secret is configured (OMS_SECRET)")
    given_bytes = given.strip().lower().encode()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, ALGORITHMS[algorithm]).hexdigest().encode()
        # Every secret is compared (no early exit), so timing says nothing about which one matched.
        matched |= hmac.compare_digest(expected, given_bytes)
    if not matched:
        raise SignatureInvalid("X-Signature does not match the body")
