"""The page's scene buttons on a phone: a long press stores a scene, a tap recalls it (with the page's
morph time). Headless Chromium (through Playwright) at phone size with touch, against
`ravemap serve --audio none`; the daemon's state is read back over OSC `/ravemap/status`."""

from __future__ import annotations

import time

import pytest

from tests.osc_peer import Daemon, OscPeer
from tests.web_browser import PHONE, horizontal_overflow, launch_browser

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[test] brings Playwright")
expect = playwright_api.expect

A = [1.0, 1.0, 1.0, 1.0]
B = [-1.0, -2.0, 0.0, 2.0]


def _wait(peer: OscPeer, ok, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while not ok(state := peer.status()):
        assert time.monotonic() < deadline, f"the daemon never got there: {state['scenes']}, {state['scene']}"
    return state


def _long_press(page, cdp, name: str, seconds: float = 1.0) -> None:
    button = page.get_by_role("button", name=name, exact=True)
    button.scroll_into_view_if_needed()
    box = button.bounding_box()  # in the viewport, where touches land
    point = [{"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2, "id": 1}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point})
    time.sleep(seconds)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_a_long_press_stores_a_scene_and_a_tap_recalls_it(tmp_path, tiny_model, loop_file):
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port)
    peer.daemon = ("127.0.0.1", daemon.port)
    errors: list[str] = []
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = launch_browser(playwright)
            context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
            page = context.new_page()
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(daemon.web_url)
            expect(page.locator("#connection")).to_have_text("connected")
            scenes = [page.get_by_role("button", name=f"scene {n}", exact=True) for n in range(1, 9)]
            for button in scenes:
                expect(button).to_be_visible()
            assert horizontal_overflow(page) == 0, "the scene buttons fit a phone's width"
            cdp = context.new_cdp_session(page)

            peer.send("/ravemap/latent", *A)
            _wait(peer, lambda s: s["targets"] == A)
            _long_press(page, cdp, "scene 1")
            _wait(peer, lambda s: s["scenes"] == [1])
            expect(scenes[0]).to_have_class("stored")
            peer.send("/ravemap/latent", *B)
            _wait(peer, lambda s: s["targets"] == B)
            _long_press(page, cdp, "scene 2")
            state = _wait(peer, lambda s: s["scenes"] == [1, 2])
            assert state["scene"]["number"] is None and state["targets"] == B, "a long press stores, never recalls"

            scenes[0].tap()
            state = _wait(peer, lambda s: s["targets"] == A)
            assert state["scene"]["number"] == 1
            expect(scenes[0]).to_have_attribute("aria-current", "true")
            expect(scenes[1]).to_have_attribute("aria-current", "false")

            page.get_by_label("morph time").fill("0.5")
            scenes[1].tap()
            state = _wait(peer, lambda s: s["scene"]["number"] == 2 and s["scene"]["state"] == "idle")
            assert state["targets"] == B
            assert state["scene"]["ends_at"] - state["scene"]["starts_at"] == pytest.approx(0.5, abs=1e-6)
            expect(scenes[1]).to_have_attribute("aria-current", "true")
            context.close()
            browser.close()
        assert not errors, f"the page threw: {errors}"
    finally:
        assert daemon.stop() == 0
        peer.close()
