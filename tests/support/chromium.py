"""Finding the Chromium the browser tests (tests/browser/) drive, and what to say when there is none.

Playwright's own browser download is not used (it is not reachable from CI); Playwright launches the system's
Chromium through its executable path instead: ``CHROMIUM_PATH`` when set, else ``chromium`` (Debian's package) or
``chromium-browser`` on the PATH, else the usual install locations.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "CHROMIUM_PATH"
_NAMES = ("chromium", "chromium-browser")
_PLACES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium")
INSTALL_HINT = (
    "install Chromium: `sudo apt-get install chromium` (Debian, Ubuntu), or point CHROMIUM_PATH at a Chromium or "
    "Chrome executable; `.ci/run` installs it itself when run as root"
)


def _executable(path: str | Path) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_chromium() -> tuple[str | None, str]:
    """The Chromium executable to launch, or None and why not (a sentence naming where it looked)."""
    given = os.environ.get(ENV, "").strip()
    if given:
        if _executable(given):
            return given, f"{ENV}={given}"
        return None, f"{ENV}={given} is not an executable file"
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found, f"{name} on the PATH"
    for place in _PLACES:
        if _executable(place):
            return place, place
    return None, f"no Chromium found ({ENV} unset, no {' or '.join(_NAMES)} on the PATH, none in {', '.join(_PLACES)})"


def launch_args() -> list[str]:
    """Chromium refuses to start as root with its sandbox on (CI runs as root in a container)."""
    return ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
