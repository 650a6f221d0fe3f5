"""The page speaks the OSC API: each of its messages becomes the event the same OSC message becomes.

Fast checks without a browser: the translation, the page's own script using only addresses the
daemon routes, the feedback hook that pushes state to pages, the page's address, and what
`ravemap serve` says when the page's port is taken.
"""

from __future__ import annotations

import re
import socket

import pytest

from ravemap.config import validate
from ravemap.control.feedback import Feedback
from ravemap.control.osc import OscTranslator
from ravemap.web.address import lan_address, page_url
from ravemap.web.protocol import Refused, Request, WebTranslator
from ravemap.web.server import STATIC, load_assets
from tests.conftest import ravemap, write_config
from tests.osc_peer import free_udp_port

CONFIG = validate({})


@pytest.mark.parametrize("address,args", [
    ("/ravemap/xy", [0.25, 0.75]),
    ("/ravemap/latent", [1, -2.5, 0.0, 3]),
    ("/ravemap/latent/2", [1.5]),
    ("/ravemap/record", [1]),
    ("/ravemap/record/once", []),
    ("/ravemap/examples/undo", []),
    ("/ravemap/examples/clear", []),
    ("/ravemap/train", []),
    ("/ravemap/run", [0]),
    ("/ravemap/transfer", [1]),
    ("/ravemap/engine", [0]),
    ("/ravemap/model", ["default"]),
    ("/ravemap/loop", ["default.wav"]),
    ("/ravemap/mapping/save", ["take two"]),
    ("/ravemap/mapping/load", ["default"]),
    ("/ravemap/mapping/new", []),
    ("/wekinator/control/startRunning", []),
])
def test_a_page_message_becomes_the_event_the_same_osc_message_becomes(address, args):
    import json

    osc = OscTranslator(CONFIG.inputs.size, len(CONFIG.latent.dims), CONFIG.osc.routes)
    page = WebTranslator(CONFIG).translate(json.dumps({"osc": address, "args": args, "id": 5}))
    assert page.message_id == 5
    assert page.event == osc.translate(address, args)


def test_a_second_finger_drives_the_next_two_input_dims_when_there_are_any():
    four = WebTranslator(validate({"inputs": {"size": 4}}))
    assert four.pads == 2
    event = four.translate('{"osc": "/ravemap/pad/1", "args": [0.1, 0.9]}').event
    assert event.values == ((2, 0.1), (3, 0.9))
    two = WebTranslator(CONFIG)
    assert two.pads == 1
    with pytest.raises(Refused, match="unknown address"):
        two.translate('{"osc": "/ravemap/pad/1", "args": [0.1, 0.9]}')


def test_the_page_asks_for_the_folders_lists_and_nothing_else():
    assert WebTranslator(CONFIG).translate('{"get": "lists"}').request == Request("lists")
    for text in ('{"get": "lists", "osc": "/ravemap/xy"}', '{"get": "/etc/passwd"}', '{"get": 1}'):
        with pytest.raises(Refused):
            WebTranslator(CONFIG).translate(text)


def test_every_address_the_pages_script_sends_is_one_the_daemon_routes():
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    sent = set(re.findall(r'["`](/(?:ravemap|wek)[^"`]*)["`]', script))
    assert {"/ravemap/xy", "/ravemap/record", "/ravemap/train", "/ravemap/run"} <= sent
    translator = WebTranslator(validate({"inputs": {"size": 4}}))
    for address in sent:
        concrete = re.sub(r"\$\{[^}]+\}", "1", address)
        assert any(concrete == a or concrete.startswith("/ravemap/latent/") or concrete.startswith("/ravemap/pad/")
                   for a in translator.osc.addresses()), address


def test_the_page_loads_nothing_from_anywhere_else():
    assets = load_assets()
    assert {"index.html", "app.js", "app.css"} <= set(assets)
    for name, (body, _) in assets.items():
        text = body.decode("utf-8").replace("ws://", "").replace("wss://", "")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), name
        assert "import(" not in text and "@import" not in text, name


def test_feedback_hands_every_broadcast_to_its_listeners_and_survives_a_broken_one():
    feedback = Feedback(CONFIG)
    heard: list[tuple[str, tuple]] = []

    def broken(address: str, args: tuple) -> None:
        raise RuntimeError("a listener bug")

    feedback.add_listener(broken)
    feedback.add_listener(lambda address, args: heard.append((address, args)))
    feedback.broadcast("/ravemap/run", 1)
    feedback.broadcast("/ravemap/train/done", 0.5, 4, 0.1)
    assert heard == [("/ravemap/run", (1,)), ("/ravemap/train/done", (0.5, 4, 0.1))]
    assert feedback.listener_errors == 2
    feedback.remove_listener(broken)
    feedback.broadcast("/ravemap/examples", 3)
    assert feedback.listener_errors == 2 and heard[-1] == ("/ravemap/examples", (3,))
    feedback.close()


def test_the_pages_address_is_the_lan_address_when_bound_on_all_of_them():
    assert page_url("127.0.0.1", 8080) == "http://127.0.0.1:8080/"
    assert page_url("::1", 8081) == "http://[::1]:8081/"
    lan = lan_address()
    if lan is None:  # a machine on no network at all: the page is still reachable here
        assert page_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/"
    else:
        assert not lan.startswith("127.") and page_url("0.0.0.0", 8080) == f"http://{lan}:8080/"


def test_a_taken_web_port_stops_serve_before_any_sound_with_a_line_saying_how_to_choose_another(
        tiny_model, loop_file, tmp_path):
    """Every port is opened before audio starts: a daemon whose web port is taken never plays, and
    leaves no port of its own taken."""
    osc_port, wekinator_port = free_udp_port(), free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "serve.yaml", osc={"host": "127.0.0.1", "zeroconf": False,
                                                            "wekinator_input_port": wekinator_port},
                              midi={"enabled": False})
        result = ravemap("serve", "--config", str(config), "--model", str(tiny_model), "--loop", str(loop_file),
                         "--audio", "none", "--osc-port", str(osc_port), "--feedback-port",
                         str(free_udp_port()), "--mappings-dir", str(tmp_path), "--web-port", str(port), timeout=90)
    assert result.returncode == 4, result.stderr[-2000:]
    line = [ln for ln in result.stderr.splitlines() if ln.startswith("ravemap:")][-1]
    assert f"127.0.0.1:{port}" in line and "--web-port" in line and "web.enabled: false" in line
    assert "playing on" not in result.stdout, "audio started before every port was open"
    assert "stopped: not started" in result.stderr, "the engine never started: " + result.stderr[-2000:]
    assert "Wekinator input port udp" not in result.stderr, "nor was Wekinator's port served"
    for udp in (osc_port, wekinator_port):  # nothing of the daemon's stays taken
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", udp))


def test_web_port_is_checked_like_every_setting():
    from ravemap.errors import ConfigError

    with pytest.raises(ConfigError, match=r"web\.port: 70000 is not allowed"):
        validate({"web": {"port": 70000}})
    assert validate({"web": {"enabled": False}}).web.enabled is False


def test_a_terminal_that_cannot_show_the_qr_code_gets_the_address_in_words():
    import io

    from ravemap.web.address import print_qr

    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    print_qr("http://192.168.1.23:8080/", out)
    assert b"open http://192.168.1.23:8080/" in out.buffer.getvalue()
