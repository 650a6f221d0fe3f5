"""What the README promises is what the daemon does: the OSC table cannot drift from the routes."""

from __future__ import annotations

import re

from server.config import load_config
from server.control.osc import OscTranslator
from tests.conftest import REPO


def _osc_table_addresses() -> set[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("### The OSC API", 1)[1].split("\n\n", 2)[2]
    table = section.split("\n\n", 1)[0]
    found = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        found.update(re.findall(r"`(/[^`]+)`", first_cell))
    return found


def test_the_readme_osc_table_lists_exactly_the_addresses_the_daemon_routes():
    config = load_config(REPO / "config.yaml")
    routed = set(OscTranslator(config.inputs.size, len(config.latent.dims), config.osc.routes).addresses())
    assert _osc_table_addresses() == routed
