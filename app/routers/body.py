"""Reading a request body with a size limit, without trusting Content-Length alone."""

from __future__ import annotations

from fastapi import Request

from app.errors import PayloadTooLarge


async def read_limited_body(request: Request, limit: int, setting: str = "COMMERCE_MAX_BODY_BYTES") -> bytes:
    """The whole body, refused (413, naming ``setting``) as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the limit of {limit} bytes ({setting})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the limit of {limit} bytes ({setting})")
        chunks.append(chunk)
    return b"".join(chunks)
