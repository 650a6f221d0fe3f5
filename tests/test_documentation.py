"""What the README promises is what the daemon does: the OSC and Wekinator tables are the vocabulary's
(`ravemap.control.vocabulary`, printed by `python -m ravemap.control.vocabulary`), which the translator
routes and the OSCQuery namespace serves."""

from __future__ import annotations

import re

from ravemap.config import load_config
from ravemap.control import vocabulary
from ravemap.control.osc import OscTranslator
from tests.conftest import REPO


def _table(heading: str) -> str:
    section = (REPO / "README.md").read_text().split(heading + "\n", 1)[1]
    return section[section.index("\n|") + 1:].split("\n\n", 1)[0]


def _table_addresses(heading: str) -> set[str]:
    """The addresses in the first cells of the first table under `heading` (a pointer such as
    `/wekinator/control/…` to another table is not an address)."""
    found = set()
    for row in _table(heading).splitlines()[2:]:
        first_cell = row.split("|")[1]
        found.update(a for a in re.findall(r"`(/[^`]+)`", first_cell) if not a.endswith("…"))
    return found


def _routed() -> set[str]:
    config = load_config(REPO / "config.yaml")
    return set(OscTranslator(config.inputs.size, len(config.latent.dims), config.osc.routes).addresses())


def test_the_readme_tables_are_the_vocabularys():
    assert _table("### The OSC API") == vocabulary.markdown_table("osc"), \
        "regenerate the table: python -m ravemap.control.vocabulary"
    assert _table("### Wekinator") == vocabulary.markdown_table("wekinator")


def test_every_address_in_the_readme_is_in_the_vocabulary_and_vice_versa():
    declared = {e.address for e in vocabulary.entries()}
    documented = _table_addresses("### The OSC API") | _table_addresses("### Wekinator")
    assert documented == declared


def test_the_daemon_routes_exactly_the_vocabulary():
    assert _routed() == {e.address for e in vocabulary.entries()}


def test_the_readme_osc_table_lists_exactly_the_addresses_the_daemon_routes():
    routed = _routed()
    assert _table_addresses("### The OSC API") == {a for a in routed if not a.startswith("/wekinator/")}


def test_the_readme_wekinator_table_lists_every_wekinator_message_the_daemon_routes():
    routed = _routed()
    wekinator = {a for a in routed if a.startswith(("/wekinator/", "/wek/"))}
    assert "/wekinator/control/outputs" in wekinator and "/wekinator/control/cancelTrain" in wekinator
    assert _table_addresses("### Wekinator") == wekinator
