"""A real headless Chromium for the web page's tests: Debian's `chromium` package driven by Playwright.

Playwright cannot download its own browser here, so it launches `/usr/bin/chromium`
(`./run-tests` installs the package). Nothing but loopback is reached: the daemon under test
serves the page on 127.0.0.1, and Chromium's background services (updates, sync, QUIC,
component downloads) are switched off.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("RAVEMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
PHONE_LANDSCAPE = {"width": 844, "height": 390}
DESKTOP = {"width": 1280, "height": 800}


def launch_browser(playwright):
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (./run-tests installs it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class Requests:
    """Every URL a page asks for (HTTP and WebSocket), to check none leaves the daemon's host."""

    def __init__(self, page):
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda ws: self.urls.append(ws.url))

    def off_host(self, host: str) -> list[str]:
        return [u for u in self.urls if urlsplit(u).scheme != "data" and urlsplit(u).netloc != host]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no horizontal scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    """Into the test's folder, and into RAVEMAP_SCREENSHOTS when set (to look at them)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    folder = os.environ.get("RAVEMAP_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    return path
