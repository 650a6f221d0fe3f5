"""A new parameter is one vocabulary entry: the translator routes it, checks its type and range, and
the page is told to build a control for it."""

from __future__ import annotations

import pytest

from ravemap.config import load_config
from ravemap.control import vocabulary
from ravemap.control.events import Command
from ravemap.control.osc import BadMessage, OscTranslator
from ravemap.web.state import page_config

# A second address for the mix (the vocabulary has /ravemap/mix): the mechanism, not the parameter, is tested.
MIX = vocabulary.Entry("/ravemap/wet", "f", "f", "dry/wet mix, 0 dry .. 1 wet", "mix", "rw", range=((0.0, 1.0),),
                       value="mix", reported=True, page="fader", expect="one number")


@pytest.fixture
def with_mix(monkeypatch):
    monkeypatch.setattr(vocabulary, "VOCABULARY", (*vocabulary.VOCABULARY, MIX))


def _translator() -> OscTranslator:
    config = load_config()
    return OscTranslator(config.inputs.size, len(config.latent.dims), config.osc.routes)


def test_an_added_entry_is_routed_and_checked_from_its_declaration(with_mix):
    translator = _translator()
    assert translator.translate("/ravemap/wet", [0.25]) == Command("mix", (0.25,))
    with pytest.raises(BadMessage, match=r"/ravemap/wet: expected one number, got 2 argument\(s\)"):
        translator.translate("/ravemap/wet", [0.25, 1.0])
    with pytest.raises(BadMessage, match=r"must be in 0\.\.1, got 2"):
        translator.translate("/ravemap/wet", [2.0])
    with pytest.raises(BadMessage, match="must be a number"):
        translator.translate("/ravemap/wet", ["wet"])
    assert "mix" in vocabulary.commands()
    params = page_config(load_config(), 1)["params"]
    assert {"address": "/ravemap/wet", "kind": "fader", "name": "wet", "range": [0.0, 1.0], "unit": None,
            "description": MIX.description, "state": "mix", "panel": "params", "per_dim": False} in params


def test_every_address_the_translator_has_a_function_for_is_declared():
    translator = _translator()
    assert set(translator.commands) <= {e.address for e in vocabulary.entries()}


def test_the_translator_refuses_to_start_with_an_undeclared_address(monkeypatch):
    monkeypatch.setattr(vocabulary, "VOCABULARY", tuple(e for e in vocabulary.VOCABULARY
                                                        if e.address != "/ravemap/gain"))
    with pytest.raises(ValueError, match="missing from the vocabulary.*/ravemap/gain"):
        _translator()
