"""What the README promises is what the daemon does: the OSC and Wekinator tables cannot drift from the routes."""

from __future__ import annotations

import re

from ravemap.config import load_config
from ravemap.control.osc import OscTranslator
from tests.conftest import REPO


def _table_addresses(heading: str) -> set[str]:
    """The addresses in the first cells of the first table under `heading` (a pointer such as
    `/wekinator/control/…` to another table is not an address)."""
    section = (REPO / "README.md").read_text().split(heading + "\n", 1)[1]
    table = section[section.index("\n|") + 1:].split("\n\n", 1)[0]
    found = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        found.update(a for a in re.findall(r"`(/[^`]+)`", first_cell) if not a.endswith("…"))
    return found


def _routed() -> set[str]:
    config = load_config(REPO / "config.yaml")
    return set(OscTranslator(config.inputs.size, len(config.latent.dims), config.osc.routes).addresses())


def test_the_readme_osc_table_lists_exactly_the_addresses_the_daemon_routes():
    routed = _routed()
    assert _table_addresses("### The OSC API") == {a for a in routed if not a.startswith("/wekinator/")}


def test_the_readme_wekinator_table_lists_every_wekinator_message_the_daemon_routes():
    routed = _routed()
    wekinator = {a for a in routed if a.startswith(("/wekinator/", "/wek/"))}
    assert "/wekinator/control/outputs" in wekinator and "/wekinator/control/cancelTrain" in wekinator
    assert _table_addresses("### Wekinator") == wekinator
