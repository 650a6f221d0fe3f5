"""The page's performer panel, in real Chromium at phone size against `ravemap serve`: mix, jitter, limit,
autopilot and a scale per latent dim of the model, each found by its accessible name, each moves the
daemon's value (read back over OSC)."""

from __future__ import annotations

import time

import pytest

from tests.osc_peer import serve_for
from tests.web_browser import PHONE, launch_browser

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[test] brings Playwright")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    yield from serve_for(peer, tmp_path_factory.mktemp("performer-panel"), tiny_model, loop_file)


def _until(peer, field, wanted, what: str):
    deadline = time.monotonic() + 5
    while (value := peer.status()[field]) != wanted:
        assert time.monotonic() < deadline, f"{what} never reached the daemon: {field} is {value}"
        time.sleep(0.05)


def test_the_performer_panels_controls_each_move_the_daemons_value(daemon, peer):
    with playwright_api.sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            page.goto(daemon.web_url)
            expect(page.locator("#connection")).to_have_text("connected")
            panel = page.get_by_role("group", name="performer panel")
            # (name, key, the status field, the value it then holds)
            for name, key, field, wanted in (("mix", "Home", "mix", 0.0), ("jitter", "End", "jitter", 3.0),
                                             ("limit", "Home", "limit_db", -60.0),
                                             ("autopilot", "End", "autopilot", 1.0)):
                control = panel.get_by_role("slider", name=name, exact=True)
                expect(control).to_be_visible()
                control.focus()
                page.keyboard.press(key)
                _until(peer, field, wanted, name)
            peer.send("/ravemap/autopilot", 0.0)
            scales = [panel.get_by_role("slider", name=f"scale {n}", exact=True) for n in range(8)]
            expect(panel.get_by_role("slider", name="scale 8", exact=True)).to_have_count(0)
            for n, control in enumerate(scales):  # one per latent dim of the model (the fixture has 8)
                expect(control).to_be_visible()
                control.focus()
                page.keyboard.press("Home")
                _until(peer, "scale", [-4.0] * (n + 1) + [1.0] * (7 - n), f"scale {n}")
            peer.send("/ravemap/mix", 0.5)  # and the panel shows what the daemon is told elsewhere
            expect(panel.get_by_role("slider", name="mix", exact=True)).to_have_value("0.5", timeout=3000)
        finally:
            browser.close()
