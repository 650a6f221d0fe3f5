"""The control page in a real browser against `ravemap serve --audio none`: a performer's phone.

Headless Chromium (Debian's package, through Playwright) opens the page the daemon serves,
plays it with the mouse, the keyboard and touches, and the daemon's state is read back over
OSC `/ravemap/status`, the way any other controller sees it. One daemon for the module (the
knn regressor: exact at the examples, so offsets can be compared with the recorded faders).
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest

from tests.osc_peer import OscPeer, serve_for
from tests.web_browser import (
    DESKTOP,
    PHONE,
    PHONE_LANDSCAPE,
    Requests,
    horizontal_overflow,
    launch_browser,
    save_screenshot,
)

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[test] brings Playwright")
expect = playwright_api.expect

EXAMPLE_PLACES = [(0.2, 0.25), (0.8, 0.2), (0.25, 0.8), (0.75, 0.75)]
FADER_KEYS = [  # per example: (fader, key, presses), all through the keyboard (Page Up/Down: a tenth of the range)
    [(0, "ArrowRight", 3), (1, "PageDown", 1)],
    [(0, "PageUp", 2), (2, "ArrowLeft", 4)],
    [(1, "PageUp", 3), (3, "ArrowLeft", 2)],
    [(0, "End", 1), (2, "PageDown", 2), (3, "Home", 1)],
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, tiny_model, loop_file, peer):
    yield from serve_for(peer, tmp_path_factory.mktemp("web"), tiny_model, loop_file,
                         config={"mapping": {"regressor": "knn"}})


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, daemon):
    """Opens the daemon's page in a fresh browser context; every page's requests are recorded."""
    opened = []

    def open_one(viewport=PHONE, touch=False):
        context = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        requests = Requests(page)
        page.goto(daemon.web_url)
        expect(page.locator("#connection")).to_have_text("connected")
        opened.append((context, page, requests, errors))
        return page

    yield open_one
    host = urlsplit(daemon.web_url).netloc
    for context, _page, requests, errors in opened:
        assert not errors, f"the page threw: {errors}"
        assert requests.urls, "the page's requests were recorded"
        assert requests.off_host(host) == [], "the page asked for nothing off the daemon's host"
        context.close()


def pad_point(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of input (x, y) on the pad (y up, like `ravemap plot`)."""
    box = page.get_by_role("application", name="XY pad").bounding_box()
    return box["x"] + x * box["width"], box["y"] + (1 - y) * box["height"]


def drag(page, to: tuple[float, float], start: tuple[float, float] = (0.5, 0.5)) -> None:
    page.mouse.move(*pad_point(page, *start))
    page.mouse.down()
    page.mouse.move(*pad_point(page, *to), steps=6)
    page.mouse.up()


def fader(page, i: int):
    return page.get_by_role("slider", name=f"latent {i}", exact=True)


def faders(page, n: int = 4) -> list[float]:
    return [float(fader(page, i).input_value()) for i in range(n)]


def button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def wait_status(peer: OscPeer, check, timeout: float = 5.0) -> dict:
    """Poll `/ravemap/status` until `check(state)` holds; the last state in the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        state = peer.status()
        if check(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the daemon's state never matched: {state}")
        time.sleep(0.05)


def close(a, b, tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def reset(page, peer: OscPeer) -> None:
    """Manual mode, no examples, faders at 0, from the page's own buttons where it has them."""
    peer.send("/ravemap/run", 0)
    peer.send("/ravemap/record", 0)
    peer.send("/ravemap/latent", 0.0, 0.0, 0.0, 0.0)
    wait_status(peer, lambda s: not s["running"] and not s["recording"])
    button(page, "clear").click()
    wait_status(peer, lambda s: s["examples"] == 0 and s["targets"] == [0.0] * 4)


def test_a_phone_records_four_examples_trains_and_plays_them_back(open_page, peer, tmp_path):
    page = open_page(PHONE)
    reset(page, peer)
    expect(page.get_by_label("examples", exact=True)).to_have_text("0")
    latency = peer.status()["latency_ms"]
    expect(page.get_by_label("latency", exact=True)).to_have_text(f"{latency:.0f}")

    drag(page, (0.9, 0.1))
    state = wait_status(peer, lambda s: s["inputs"][0] > 0.85 and s["inputs"][1] < 0.15)
    assert 0.85 < state["inputs"][0] <= 0.9 + 1e-3 and 0.1 - 1e-3 <= state["inputs"][1] < 0.15

    recorded = []
    for place, keys in zip(EXAMPLE_PLACES, FADER_KEYS, strict=True):
        drag(page, place)
        for i, key, presses in keys:
            slider = fader(page, i)
            slider.focus()
            for _ in range(presses):
                slider.press(key)
        values = faders(page)
        button(page, "record once").click()
        count = len(recorded) + 1
        state = wait_status(peer, lambda s, n=count: s["examples"] == n)
        assert close(state["targets"], values), "the daemon recorded the faders the page shows"
        assert close(state["inputs"], list(place), tol=0.01)
        recorded.append(values)
    assert len({tuple(v) for v in recorded}) == 4, f"four different fader settings: {recorded}"
    expect(page.get_by_label("examples", exact=True)).to_have_text("4")

    button(page, "train").click()
    expect(page.get_by_label("loss", exact=True)).to_have_text(re.compile(r"^loss \d"), timeout=30_000)
    assert peer.status()["trained"]
    expect(page.locator("#field canvas")).to_have_count(4)

    run = button(page, "run")
    run.click()
    expect(run).to_have_attribute("aria-pressed", "true")
    wait_status(peer, lambda s: s["running"])
    for place, values in zip(EXAMPLE_PLACES, recorded, strict=True):
        drag(page, place, start=(0.5, 0.5))
        state = wait_status(peer, lambda s, v=values: close(s["offsets"], v))
        assert close(state["offsets"], values)
        for i, value in enumerate(values):  # the faders follow the mapping by themselves
            expect(fader(page, i)).to_have_value(_shown(value), timeout=2000)
    save_screenshot(page, tmp_path, "phone-390x844-running")
    assert horizontal_overflow(page) == 0, "no horizontal scrolling at phone width"
    run.click()
    expect(run).to_have_attribute("aria-pressed", "false")


def _shown(value: float) -> str:
    """How a range input with step 0.05 writes `value`."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def test_the_record_toggle_records_while_the_pad_moves_and_shows_its_state(open_page, peer):
    page = open_page(PHONE)
    reset(page, peer)
    record = button(page, "record")
    record.click()
    expect(record).to_have_attribute("aria-pressed", "true")
    wait_status(peer, lambda s: s["recording"])
    drag(page, (0.3, 0.3), start=(0.6, 0.6))
    state = wait_status(peer, lambda s: s["examples"] >= 2)
    record.click()
    expect(record).to_have_attribute("aria-pressed", "false")
    count = wait_status(peer, lambda s: not s["recording"])["examples"]
    assert count >= state["examples"] >= 2, "each move of the pad while recording stored an example"
    expect(page.get_by_label("examples", exact=True)).to_have_text(str(count))
    button(page, "undo").click()
    wait_status(peer, lambda s: s["examples"] == count - 1)
    expect(page.get_by_label("examples", exact=True)).to_have_text(str(count - 1))


def test_a_second_page_sees_the_first_pages_changes_within_a_second(open_page, peer):
    first = open_page(PHONE)
    second = open_page(PHONE)
    reset(first, peer)
    slider = fader(first, 1)
    slider.focus()
    for _ in range(7):
        slider.press("ArrowRight")
    expect(fader(second, 1)).to_have_value(slider.input_value(), timeout=1000)
    drag(first, (0.1, 0.9))
    expect(second.locator("#pad-readout")).to_have_text("x 0.10 y 0.90", timeout=1000)
    button(first, "record").click()
    expect(button(second, "record")).to_have_attribute("aria-pressed", "true", timeout=1000)
    button(first, "record").click()
    expect(button(second, "record")).to_have_attribute("aria-pressed", "false", timeout=1000)
    transfer = button(first, "transfer")
    transfer.click()
    expect(button(second, "transfer")).to_have_attribute("aria-pressed", "false", timeout=1000)
    assert not peer.status()["transfer"]
    transfer.click()
    expect(button(second, "transfer")).to_have_attribute("aria-pressed", "true", timeout=1000)


def test_an_osc_latent_message_from_another_controller_moves_the_faders(open_page, peer):
    page = open_page(PHONE)
    reset(page, peer)
    peer.send("/ravemap/latent", 1.5, -0.75, 0.25, 2.0)
    for i, value in enumerate(["1.5", "-0.75", "0.25", "2"]):
        expect(fader(page, i)).to_have_value(value, timeout=1000)
    peer.send("/ravemap/latent/3", -3.0)
    expect(fader(page, 3)).to_have_value("-3", timeout=1000)
    peer.send("/ravemap/engine", 0)
    expect(button(page, "engine")).to_have_attribute("aria-pressed", "false", timeout=1000)
    button(page, "engine").click()
    wait_status(peer, lambda s: s["engine"])


def test_two_fingers_on_the_pad_the_first_one_drives_x_and_y(open_page, peer):
    page = open_page(PHONE, touch=True)
    reset(page, peer)
    cdp = page.context.new_cdp_session(page)
    first, second = pad_point(page, 0.3, 0.7), pad_point(page, 0.9, 0.1)
    touch = [{"x": first[0], "y": first[1], "id": 1}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": touch})
    both = touch + [{"x": second[0], "y": second[1], "id": 2}]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": both})
    moved = pad_point(page, 0.35, 0.65)
    both[0].update(x=moved[0], y=moved[1])
    cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": both})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    state = wait_status(peer, lambda s: close(s["inputs"], [0.35, 0.65], tol=0.01))
    assert close(state["inputs"], [0.35, 0.65], tol=0.01), "the second finger (with no dims to drive) is ignored"
    assert page.evaluate("window.scrollY") == 0, "touching the pad does not scroll the page"


def test_the_page_fits_a_phone_either_way_and_a_desktop(open_page, tmp_path):
    for name, viewport in [("phone-390x844", PHONE), ("phone-landscape-844x390", PHONE_LANDSCAPE),
                           ("desktop-1280x800", DESKTOP)]:
        page = open_page(viewport)
        assert horizontal_overflow(page) == 0, f"no horizontal scrolling at {name}"
        pad = page.get_by_role("application", name="XY pad").bounding_box()
        assert pad["width"] >= 200 and abs(pad["width"] - pad["height"]) < 2, f"a square pad at {name}: {pad}"
        assert pad["y"] + pad["height"] <= viewport["height"], f"the whole pad is on screen at {name}"
        for name_ in ("record", "record once", "undo", "clear", "train", "run", "transfer", "engine"):
            box = button(page, name_).bounding_box()
            assert box["height"] >= 40 and box["width"] >= 60, f"{name_!r} is big enough to hit at {name}"
        save_screenshot(page, tmp_path, name)


def test_the_pickers_list_the_folders_and_a_bad_choice_is_answered_on_the_page(open_page, daemon, peer):
    page = open_page(DESKTOP)
    models = page.get_by_role("combobox", name="model", exact=True)
    expect(models.locator("option")).not_to_have_count(0, timeout=5000)  # the lists come once it is connected
    page.get_by_label("mapping name to save or start").fill("from-the-page")
    button(page, "save mapping").click()
    mappings = page.get_by_role("combobox", name="mapping", exact=True)
    expect(mappings.locator("option", has_text="from-the-page")).to_have_count(1, timeout=5000)
    assert (daemon.mappings / "from-the-page.json").is_file()
    button(page, "new mapping").click()
    wait_status(peer, lambda s: s["mapping"] != "from-the-page")
    mappings.select_option("from-the-page")
    button(page, "load mapping").click()
    expect(page.get_by_label("mapping name", exact=True)).to_have_text("from-the-page", timeout=2000)
    page.evaluate("""() => {
        const select = document.getElementById('loop');
        const option = document.createElement('option');
        option.value = option.textContent = '../../etc/passwd';
        select.append(option); select.value = option.value;
        select.dispatchEvent(new Event('change'));
    }""")
    expect(page.locator("#message")).to_contain_text("'/'", timeout=2000)
    expect(page.locator("#message")).to_have_class(re.compile("error"))
