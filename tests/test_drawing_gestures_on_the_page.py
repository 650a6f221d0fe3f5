"""Draw mode on the control page, in a real headless Chromium at phone size against `ravemap serve
--audio none`: a path drawn on the XY pad is recorded as a gesture and plays back in a loop (the
daemon's inputs follow it, as its `/ravemap/status` reports them over OSC); stop ends it."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests.osc_peer import OscPeer, serve_for
from tests.web_browser import PHONE, Requests, horizontal_overflow, launch_browser, save_screenshot

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[test] brings Playwright")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def peer():
    p = OscPeer(0)
    yield p
    p.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    yield from serve_for(peer, tmp_path_factory.mktemp("draw"), tiny_model, loop_file)


@pytest.fixture
def page(daemon):
    with playwright_api.sync_playwright() as playwright:
        browser = launch_browser(playwright)
        context = browser.new_context(viewport=PHONE)
        opened = context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda err: errors.append(str(err)))
        requests = Requests(opened)
        opened.goto(daemon.web_url)
        expect(opened.locator("#connection")).to_have_text("connected")
        yield opened
        assert not errors, f"the page threw: {errors}"
        assert requests.off_host(urlsplit(daemon.web_url).netloc) == []
        context.close()
        browser.close()


def pad_point(page, x: float, y: float) -> tuple[float, float]:
    box = page.get_by_role("application", name="XY pad").bounding_box()
    return box["x"] + x * box["width"], box["y"] + (1 - y) * box["height"]


def wait_status(peer: OscPeer, check, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = peer.status_now()
        if check(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the daemon's state never matched: {state}")
        time.sleep(0.02)


def trace(peer: OscPeer, seconds: float) -> list[dict]:
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(peer.status_now())
        time.sleep(0.005)
    return samples


def test_a_path_drawn_in_draw_mode_plays_back_in_a_loop_until_stop(page, peer, tmp_path):
    draw = page.get_by_role("button", name="draw", exact=True)
    stop = page.get_by_role("button", name="stop", exact=True)
    expect(draw).to_have_attribute("aria-pressed", "false")
    draw.click()
    expect(draw).to_have_attribute("aria-pressed", "true")

    # A diagonal from (0.2, 0.2) to (0.8, 0.8), drawn over about half a second.
    page.mouse.move(*pad_point(page, 0.2, 0.2))
    page.mouse.down()
    for i in range(1, 26):
        t = i / 25
        page.mouse.move(*pad_point(page, 0.2 + 0.6 * t, 0.2 + 0.6 * t))
        page.wait_for_timeout(20)
    page.mouse.up()

    state = wait_status(peer, lambda s: s["gesture"] is not None)
    assert state["gestures"] == ["gesture-1"] and state["gesture"]["name"] == "gesture-1"
    assert state["gesture"]["loop"]
    samples = trace(peer, 0.5 + 2.2 * state["gesture"]["length"])  # over two loops
    xs = [s["inputs"][0] for s in samples]
    ys = [s["inputs"][1] for s in samples]
    assert min(xs) < 0.3 and max(xs) > 0.7, (min(xs), max(xs))  # the daemon's inputs follow the drawn path
    assert all(abs(x - y) < 0.02 for x, y in zip(xs, ys, strict=True))  # along the diagonal
    rises = sum(1 for a, b in zip(xs, xs[1:], strict=False) if a < 0.5 <= b)
    assert rises >= 2, "the path plays again and again"
    assert all(s["gesture"] is not None for s in samples)

    listed = page.get_by_role("button", name="play gesture-1", exact=True)
    expect(listed).to_have_attribute("aria-pressed", "true")
    assert horizontal_overflow(page) == 0
    save_screenshot(page, tmp_path, "drawn-gesture-playing")
    stop.click()
    wait_status(peer, lambda s: s["gesture"] is None)
    expect(listed).to_have_attribute("aria-pressed", "false")
    still = trace(peer, 0.3)
    assert len({tuple(s["inputs"]) for s in still}) == 1, "stopped: the inputs stay where it was"

    draw.click()  # draw mode off: the pad plays as usual, and the list plays the gesture again
    expect(draw).to_have_attribute("aria-pressed", "false")
    listed.click()
    wait_status(peer, lambda s: s["gesture"] is not None and s["gesture"]["loop"])
    stop.click()
    wait_status(peer, lambda s: s["gesture"] is None)
