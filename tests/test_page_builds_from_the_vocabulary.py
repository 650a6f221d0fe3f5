"""The page's parameter controls come from the OSC vocabulary: a parameter added to the table (here a
second gain fader, `/ravemap/level`, that becomes the `gain` command) appears on the page of a real
daemon in real Chromium, with no change to the page's code, and moving it changes the daemon's state.

The daemon is `ravemap serve` in a subprocess whose vocabulary is extended before it starts (a
`sitecustomize` module on its PYTHONPATH appends the entry), as a developer adding a line would."""

from __future__ import annotations

import os
import time

import pytest

from tests.osc_peer import Daemon
from tests.web_browser import PHONE, launch_browser

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[test] brings Playwright")
expect = playwright_api.expect

EXTEND = '''
from ravemap.control import vocabulary as v
v.VOCABULARY = (*v.VOCABULARY, v.Entry(
    "/ravemap/level", "f", "f", "output level in dB (a test's added parameter)", "gain", "rw",
    range=((-60.0, 12.0),), unit="dB", value="gain_db", reported=True, page="fader", expect="one number"))
'''


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    tmp = tmp_path_factory.mktemp("vocabulary-page")
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(EXTEND)
    path = os.pathsep.join(p for p in (str(tmp / "site"), os.environ.get("PYTHONPATH", "")) if p)
    d = Daemon(tmp, tiny_model, loop_file, peer.port, env={"PYTHONPATH": path})
    peer.daemon = ("127.0.0.1", d.port)
    yield d
    assert d.stop() == 0, d.stderr()[-3000:]


def test_a_parameter_added_to_the_vocabulary_appears_on_the_page_and_plays(daemon, peer):
    with playwright_api.sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            page.goto(daemon.web_url)
            expect(page.locator("#connection")).to_have_text("connected")
            level = page.get_by_role("slider", name="level", exact=True)
            expect(level).to_be_visible()
            assert (level.get_attribute("min"), level.get_attribute("max")) == ("-60", "12")
            gain = page.get_by_role("slider", name="gain", exact=True)  # the vocabulary's own gain fader
            expect(gain).to_be_visible()
            level.focus()
            page.keyboard.press("Home")  # to the range's low end: -60 dB
            deadline = time.monotonic() + 5
            while peer.status()["gain_db"] != -60.0:
                assert time.monotonic() < deadline, "the added fader never reached the daemon"
                time.sleep(0.05)
            peer.send("/ravemap/level", -6.0)  # and over OSC the daemon routes the new address too
            expect(gain).to_have_value("-6", timeout=3000)
            expect(level).to_have_value("-6", timeout=3000)
        finally:
            browser.close()
