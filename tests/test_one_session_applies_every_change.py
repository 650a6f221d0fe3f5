"""Every front door reaches the one session thread: each command a control surface can send has a
handler, each handler has a surface, and the Python API's model and loop swaps go through the inbox
like an OSC message does. Readers on other threads see snapshots that never change under them."""

from __future__ import annotations

import ast
import logging
import shutil
import typing
from pathlib import Path

import pytest

import ravemap.api
import ravemap.control.midi
import ravemap.control.osc
from ravemap import Ravemap
from ravemap.audio.playback import make_controls
from ravemap.config import MidiAction, load_config
from ravemap.control import vocabulary
from ravemap.control.events import Inbox
from ravemap.control.feedback import Feedback
from ravemap.errors import ModelError, SourceError
from ravemap.mapping.trainer import Trainer
from ravemap.session import Session, new_mapping
from tests.conftest import write_config

# The API's barrier: `Ravemap._call("sync")` returns once everything posted before it is applied. It is
# plumbing of the API (its tests use it), not a command of any control surface.
API_PLUMBING = {"sync"}


def _string_calls(module: object, function: str) -> set[str]:
    """First arguments of `function("literal", ...)` calls in `module`'s source."""
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if called == function and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def surface_commands() -> dict[str, set[str]]:
    """Command names each surface produces, read from its code and data. The web page and Wekinator's
    port go through the OSC translator, so they produce the OSC names."""
    midi_actions = set(typing.get_args(MidiAction.model_fields["action"].annotation))
    named = ravemap.control.midi.COMMANDS  # actions whose command has another name ("scene" recalls)
    midi = ({"toggle"} | _string_calls(ravemap.control.midi, "Command") | set(named.values())
            | (midi_actions - ravemap.control.midi.TOGGLES - set(named)))
    return {
        # the translator's own functions, and the entries it routes from their declaration alone
        "osc": _string_calls(ravemap.control.osc, "Command") | vocabulary.commands(),
        "midi": midi,
        "python": _string_calls(ravemap.api, "_call"),
    }


@pytest.fixture
def session(tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", osc={"zeroconf": False}, midi={"enabled": False}))
    feedback = Feedback(config)
    session = Session(config, make_controls(config), Inbox(), feedback, Trainer(), tmp_path / "maps",
                      new_mapping(config, "m"))
    yield session
    session.close()
    feedback.close()


def test_every_command_a_surface_sends_has_a_handler_and_every_handler_a_surface(session):
    produced = surface_commands()
    assert len(produced["osc"]) > 15 and "vector_capture" in produced["osc"], "the OSC routing table was read"
    everything = set().union(*produced.values())
    handlers = set(session.handlers)
    assert everything - handlers == set(), "commands a surface sends that the session cannot apply"
    assert handlers - everything - API_PLUMBING == set(), "handlers no surface reaches"
    assert produced["python"] <= handlers and produced["midi"] <= handlers


def test_the_handler_table_is_the_vocabularys(session):
    """Every command an OSC address becomes (the vocabulary's `becomes`) has a handler, and every handler a
    surface reaches over OSC is named in the vocabulary: the table, not the translator's code, is the list."""
    declared = vocabulary.commands()
    handlers = set(session.handlers)
    assert declared - handlers == set(), "vocabulary entries that become commands the session cannot apply"
    midi_or_python_only = handlers - declared - API_PLUMBING
    assert midi_or_python_only <= surface_commands()["midi"] | surface_commands()["python"]
    assert surface_commands()["osc"] <= declared, "the translator makes only commands the vocabulary declares"


def test_the_translator_routes_only_to_commands_the_session_applies(session):
    """Each OSC address, sent with plausible arguments, becomes a command the handler table holds."""
    config = load_config()
    translator = ravemap.control.osc.OscTranslator(config.inputs.size, len(config.latent.dims), config.osc.routes)
    tried = 0
    for address in translator.addresses():
        for args in ([], [1], [1.0], ["default"], ["default", 0.5], [1, 2]):
            try:
                event = translator.translate(address, args)
            except ravemap.control.osc.BadMessage:
                continue
            name = getattr(event, "name", None)
            if name is not None:
                tried += 1
                assert name in session.handlers, f"{address} {args} -> {name!r}, which no handler applies"
    assert tried > 20


@pytest.fixture
def in_process(tmp_path, tiny_model, loop_file):
    config = write_config(tmp_path / "c.yaml", osc={"zeroconf": False, "wekinator_outputs": False},
                          midi={"enabled": False})
    rm = Ravemap(config, model=tiny_model, loop=loop_file, audio="none", mappings_dir=tmp_path / "maps")
    rm.start()
    yield rm
    rm.stop()


def test_the_apis_model_swap_is_applied_by_the_session_through_its_inbox(in_process, tiny_model, tmp_path, caplog):
    rm = in_process
    other = shutil.copy(tiny_model, tmp_path / "other.ts")
    applied = rm.session.applied
    with caplog.at_level(logging.INFO, logger="ravemap.playback"):
        rm.load_model(other)
    swapped = [r for r in caplog.records if r.getMessage().startswith("now playing model")]
    assert [r.threadName for r in swapped] == ["ravemap-loader"], "loaded on the session's loader thread"
    assert rm.session.applied >= applied + 2, "the command, then its Finished event, went through the inbox"
    assert rm.status()["model"] == "other.ts" and rm.session.view.model == "other.ts"
    assert rm.session.mapping.model == "other.ts"


def test_the_apis_failed_swaps_raise_the_documented_errors_and_the_old_ones_play_on(in_process, tmp_path):
    rm = in_process
    before = rm.status()
    with pytest.raises(ModelError):
        rm.load_model(tmp_path / "missing.ts")
    with pytest.raises(SourceError):
        rm.load_loop(tmp_path / "missing.wav")
    after = rm.status()
    assert (after["model"], after["loop"]) == (before["model"], before["loop"])


def test_a_readers_snapshot_never_changes_under_it(in_process):
    rm = in_process
    rm.set_inputs([0.25, 0.75])
    seen = rm.session.view
    rm.set_inputs([0.5, 0.125])
    rm.set_offsets([1.0, 0.0, 0.0, 0.0])
    rm.record_once()
    assert seen.inputs == (0.25, 0.75) and seen.examples == () and seen.targets == (0.0,) * 4
    now = rm.session.view
    assert now.inputs == (0.5, 0.125) and len(now.examples) == 1 and now.targets == (1.0, 0.0, 0.0, 0.0)
    with pytest.raises(AttributeError):
        now.inputs = (0.0, 0.0)  # type: ignore[misc]

