"""A recorded mapping survives a restart, and a bad file or name gives one clear MappingError."""

from __future__ import annotations

import copy
import errno
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ravemap.errors import MappingError
from ravemap.mapping.regressor import KINDS, RegressorSettings, fit
from ravemap.mapping.store import (
    FORMAT,
    VERSION,
    Example,
    Mapping,
    check_name,
    from_json,
    list_mappings,
    load_mapping,
    mapping_path,
    save_mapping,
    to_json,
    training_report,
)
from tests.conftest import examples

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@functools.cache
def trained(kind: str = "mlp", name: str = "xy pad") -> Mapping:
    rng = np.random.default_rng(11)
    x, y = rng.random((12, 2)), rng.uniform(-3, 3, (12, 4))
    result = fit(x, y, RegressorSettings(kind=kind, epochs=300))
    return Mapping(
        name=name, input_size=2, output_dims=(0, 1, 2, 5), output_range=(-3.0, 3.0),
        examples=[Example(tuple(a), tuple(b)) for a, b in zip(x, y, strict=True)],
        settings=RegressorSettings(kind=kind, epochs=300), regressor=result.regressor, model="rave_v2_full.ts",
        training=training_report(result), extras={"vectors": {"calm": [0.1, -0.2, 0.0, 1.5]}, "note": "é ✓"},
    )


def fresh(kind: str = "mlp", name: str = "xy pad") -> Mapping:
    return copy.copy(trained(kind, name))


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_mapping_loads_back_identical(tmp_path, kind):
    mapping = fresh(kind)
    path = save_mapping(tmp_path, mapping)
    assert path == tmp_path.resolve() / "xy pad.json"
    back = load_mapping(tmp_path, "xy pad")
    for field in ("name", "input_size", "output_dims", "output_range", "examples", "settings", "model", "training",
                  "extras"):
        assert getattr(back, field) == getattr(mapping, field), field
    assert back.regressor.to_state() == mapping.regressor.to_state()
    q = np.random.default_rng(0).random((100, 2))
    assert np.array_equal(back.regressor.predict(q), mapping.regressor.predict(q))


def test_a_mapping_without_a_trained_regressor_round_trips(tmp_path):
    mapping = Mapping("empty", input_size=3, output_dims=(0,), output_range=(-1.0, 1.0))
    save_mapping(tmp_path, mapping)
    assert load_mapping(tmp_path, "empty") == mapping


def test_the_file_is_readable_versioned_json(tmp_path):
    text = save_mapping(tmp_path, fresh("knn")).read_text(encoding="utf-8")
    data = json.loads(text)
    assert (data["format"], data["version"]) == (FORMAT, VERSION)
    assert data["input"] == {"size": 2} and data["output"] == {"dims": [0, 1, 2, 5], "range": [-3.0, 3.0]}
    assert data["regressor"]["settings"]["kind"] == "knn" and data["regressor"]["state"]["kind"] == "knn"
    assert data["model"] == "rave_v2_full.ts" and data["training"]["reason"] == "exact (knn)"
    assert text.startswith("{\n \"format\"")  # indented, one field a line
    assert re.search(r'"input": \[[-0-9.e]+, [-0-9.e]+\]', text)  # an example's numbers stay on one line
    assert "é ✓" in text


def test_saving_again_replaces_the_file_and_leaves_no_temp_files(tmp_path):
    save_mapping(tmp_path, fresh())
    changed = fresh()
    changed.examples = changed.examples[:3]
    save_mapping(tmp_path, changed)
    assert len(load_mapping(tmp_path, "xy pad").examples) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xy pad.json"]


def test_save_creates_the_folder_and_list_shows_the_mappings(tmp_path):
    folder = tmp_path / "a" / "mappings"
    assert list_mappings(folder) == []
    save_mapping(folder, fresh(name="b-side"))
    save_mapping(folder, fresh(name="A_1.2"))
    (folder / ".b-side.x1.tmp").write_text("{")  # a crashed save's leftover
    (folder / "notes.txt").write_text("hello")
    (folder / "bad..name.json").write_text("{}")
    assert list_mappings(folder) == ["A_1.2", "b-side"]


def test_the_file_name_wins_over_the_name_inside(tmp_path):
    save_mapping(tmp_path, fresh(name="old"))
    os.replace(tmp_path / "old.json", tmp_path / "new.json")
    assert load_mapping(tmp_path, "new").name == "new"


def test_a_mapping_that_could_not_be_loaded_back_is_not_saved(tmp_path):
    mapping = fresh()
    mapping.examples = [Example((0.0, float("nan")), (0.0, 0.0, 0.0, 0.0))]
    with pytest.raises(MappingError, match=r"refusing to save mapping 'xy pad'.*examples\[0\].input\[1\]"):
        save_mapping(tmp_path, mapping)
    mapping = fresh()
    mapping.extras = {"array": np.zeros(2)}
    with pytest.raises(MappingError, match="not JSON"):
        save_mapping(tmp_path, mapping)
    mapping = fresh()
    mapping.input_size = 3  # examples and regressor have 2 inputs
    with pytest.raises(MappingError, match="must hold 3 numbers"):
        save_mapping(tmp_path, mapping)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Bad files


def valid_dict() -> dict:
    return json.loads(json.dumps(to_json(fresh())))


def edited(change) -> str:
    d = valid_dict()
    change(d)
    return json.dumps(d)


def other_sized_state(d: dict) -> None:
    x = np.random.default_rng(0).random((5, 3))
    d["regressor"]["state"] = fit(x, x[:, :1], RegressorSettings(kind="linear")).regressor.to_state()


BAD_FILES = {
    "empty": (b"", "empty"),
    "blank": (b"  \n", "empty"),
    "truncated": (json.dumps(valid_dict(), indent=1)[:700].encode(), "not valid JSON (cut short"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not UTF-8"),
    "foreign object": (b'{"type": "FeatureCollection", "features": []}', "not a ravemap mapping file"),
    "foreign list": (b"[1, 2, 3]", "not a ravemap mapping file"),
    "other format": (edited(lambda d: d.update(format="wekinator")).encode(),
                     "format 'wekinator', not 'ravemap-mapping'"),
    "future version": (edited(lambda d: d.update(version=VERSION + 1)).encode(), "made by a newer ravemap"),
    "version as text": (edited(lambda d: d.update(version="1")).encode(),
                        "version: '1' is not allowed: a whole number"),
    "NaN literal": (edited(lambda d: None).replace("0.0", "NaN", 1).encode(), "not valid JSON"),
    "huge number": (edited(lambda d: d["examples"][0].update(output=[12345.5] * 4)).replace("12345.5", "1e999")
                    .encode(),
                    "examples[0].output[0]: inf is not allowed: a finite number"),
    "size as text": (edited(lambda d: d["input"].update(size="two")).encode(),
                     "input.size: 'two' is not allowed: a whole number"),
    "short example": (edited(lambda d: d["examples"][3].update(input=[0.5])).encode(),
                      "examples[3].input: (0.5,) is not allowed: must hold 2 numbers"),
    "long output": (edited(lambda d: d["examples"][0].update(output=[0.0] * 5)).encode(),
                    "examples[0].output: (0.0, 0.0, 0.0, 0.0, 0.0) is not allowed: must hold 4 numbers"),
    "text in an example": (edited(lambda d: d["examples"][3].update(input=[0.5, "x"])).encode(),
                           "examples[3].input[1]: 'x' is not allowed: a number"),
    "untaught example": (edited(lambda d: d["examples"][2].update(output=[None] * 4)).encode(),
                         "examples[2].output: (None, None, None, None) is not allowed: must teach at least one"),
    "no hidden units": (edited(lambda d: d["regressor"]["settings"].update(hidden=[0])).encode(),
                        "regressor.settings.hidden[0]: 0 is not allowed"),
    "unknown setting": (edited(lambda d: d["regressor"]["settings"].update(epoch=5)).encode(),
                        "regressor.settings.epoch: unknown setting (did you mean regressor.settings.epochs?)"),
    "examples not a list": (edited(lambda d: d.update(examples={})).encode(), "examples: {} is not allowed: a list"),
    "repeated dim": (edited(lambda d: d["output"].update(dims=[0, 1, 1, 2])).encode(),
                     "output.dims: [0, 1, 1, 2] is not allowed: each latent dimension once"),
    "bad range": (edited(lambda d: d["output"].update(range=[3.0, -3.0])).encode(), "low < high"),
    "bad name": (edited(lambda d: d.update(name="../x")).encode(),
                 "name: '../x' is not allowed: mapping name '../x' contains '/'"),
    "bad settings": (edited(lambda d: d["regressor"]["settings"].update(kind="svm")).encode(),
                     "regressor.settings.kind: 'svm' is not allowed: use one of 'mlp', 'linear' or 'knn'"),
    "bad state": (edited(lambda d: d["regressor"]["state"].update(x_std=[0.0, 1.0])).encode(),
                  "regressor.state.x_std[0]: 0.0 is not allowed: input should be greater than 0"),
    "state of another size": (edited(other_sized_state).encode(), "a regressor of 2 inputs and 4 outputs"),
    "extras not an object": (edited(lambda d: d.update(extras=[])).encode(), "extras: [] is not allowed: an object"),
}


@pytest.mark.parametrize("content, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_file_gives_a_clear_mapping_error_naming_it(tmp_path, content, message):
    (tmp_path / "live.json").write_bytes(content)
    with pytest.raises(MappingError) as caught:
        load_mapping(tmp_path, "live")
    text = str(caught.value)
    assert str(tmp_path.resolve() / "live.json") in text
    assert message in text, text


def test_a_missing_or_unreadable_file_gives_a_clear_mapping_error(tmp_path):
    with pytest.raises(MappingError, match=r"no mapping named 'gone': .*gone\.json does not exist"):
        load_mapping(tmp_path, "gone")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(MappingError, match=r"cannot read mapping 'folder' from .*folder\.json: Is a directory"):
        load_mapping(tmp_path, "folder")


@pytest.fixture(scope="module")
def saved_text(tmp_path_factory) -> str:
    return save_mapping(tmp_path_factory.mktemp("saved"), fresh("linear")).read_text(encoding="utf-8")


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_file_cut_short_anywhere_gives_a_mapping_error(tmp_path, saved_text, data):
    cut = data.draw(st.integers(0, len(saved_text) - 2))  # the last "}" goes at least
    (tmp_path / "cut.json").write_text(saved_text[:cut], encoding="utf-8")
    with pytest.raises(MappingError, match="cut.json"):
        load_mapping(tmp_path, "cut")


@settings(max_examples=examples(300), deadline=None)
@given(json_values)
def test_from_json_on_random_json_raises_only_mapping_error(d):
    try:
        from_json(d, "random.json")
    except MappingError as err:
        assert str(err).startswith("random.json: ")


FIELDS = [("format",), ("version",), ("name",), ("model",), ("input",), ("input", "size"), ("output",),
          ("output", "dims"), ("output", "range"), ("examples",), ("examples", 0), ("examples", 0, "input"),
          ("examples", 1, "output"), ("regressor",), ("regressor", "settings"), ("regressor", "settings", "hidden"),
          ("regressor", "settings", "kind"), ("regressor", "state"), ("regressor", "state", "kind"),
          ("regressor", "state", "layers"), ("regressor", "state", "y_std"), ("training",), ("extras",)]


@settings(max_examples=examples(400), deadline=None)
@given(where=st.sampled_from(FIELDS), value=json_values, delete=st.booleans())
def test_a_valid_file_with_any_field_replaced_or_removed_loads_or_raises_mapping_error(where, value, delete):
    d = valid_dict()
    parent = d
    for key in where[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    try:
        mapping = from_json(d, "edited.json")
    except MappingError:
        return
    assert isinstance(mapping, Mapping)


# ------------------------------------------------------------------------------------------------
# Names and paths


def name_is_allowed(name: str) -> bool:
    return (1 <= len(name) <= 64 and re.fullmatch(r"[A-Za-z0-9 _.\-]+", name) is not None
            and name[0] not in ". " and ".." not in name)


names = st.text(alphabet=st.sampled_from(list("aZ09 _.-/\\\x00:é~*\n")), max_size=70) | st.text(max_size=70)


@settings(max_examples=examples(500), deadline=None)
@given(name=names)
def test_only_plain_names_are_accepted_and_they_stay_in_the_folder(tmp_path_factory, name):
    folder = tmp_path_factory.getbasetemp() / "names"
    if name_is_allowed(name):
        assert check_name(name) == name
        path = mapping_path(folder, name)
        assert path.parent == folder.resolve() and path.name == f"{name}.json"
    else:
        with pytest.raises(MappingError, match="use 1 to 64 letters, digits"):
            check_name(name)
        with pytest.raises(MappingError):
            mapping_path(folder, name)


@pytest.mark.parametrize("name", ["../escape", "a/b", "/etc/passwd", "..", ".hidden", " lead", "a..b", "tab\tname",
                                  "new\nline", "nul\x00", "x" * 65, "", "back\\slash", "ünïcode"])
def test_names_with_paths_or_odd_characters_are_refused_everywhere(tmp_path, name):
    with pytest.raises(MappingError, match="mapping name"):
        save_mapping(tmp_path, Mapping(name, 2, (0,), (-1.0, 1.0)))
    with pytest.raises(MappingError, match="mapping name"):
        load_mapping(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


def test_a_non_text_name_is_refused():
    with pytest.raises(MappingError, match="must be text"):
        check_name(3)  # type: ignore[arg-type]


def test_a_symlink_out_of_the_folder_is_refused_and_its_target_untouched(tmp_path):
    folder, outside = tmp_path / "mappings", tmp_path / "elsewhere"
    folder.mkdir()
    save_mapping(outside, fresh(name="secret"))
    before = (outside / "secret.json").read_bytes()
    (folder / "link.json").symlink_to(outside / "secret.json")
    with pytest.raises(MappingError, match="outside the mapping folder"):
        load_mapping(folder, "link")
    with pytest.raises(MappingError, match="outside the mapping folder"):
        save_mapping(folder, fresh(name="link"))
    assert (outside / "secret.json").read_bytes() == before
    assert list_mappings(folder) == []
    (folder / "loop.json").symlink_to(folder / "loop.json")
    with pytest.raises(MappingError):
        load_mapping(folder, "loop")


def test_a_mapping_folder_that_is_itself_a_link_works(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    save_mapping(tmp_path / "linked", fresh(name="via link"))
    assert load_mapping(tmp_path / "real", "via link").examples == fresh().examples


# ------------------------------------------------------------------------------------------------
# Saving when the disk says no


def can_create_in(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder that really refuses new files: chmod 555, and for root (who ignores permission bits)
    the immutable attribute, which binds root too. Skips when neither works here."""
    folder = tmp_path / "ro"
    save_mapping(folder, fresh())
    folder.chmod(0o555)
    immutable = False
    try:
        if can_create_in(folder) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        if can_create_in(folder):
            pytest.skip("this user can write into a chmod 555 folder and chattr +i is unavailable: "
                        "see the simulated disk-full test")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_read_only_folder_on_save_raises_mapping_error_and_the_old_file_is_intact(read_only_folder):
    before = (read_only_folder / "xy pad.json").read_bytes()
    changed = fresh()
    changed.examples = []
    with pytest.raises(MappingError) as caught:
        save_mapping(read_only_folder, changed)
    text = str(caught.value)
    assert "cannot save mapping 'xy pad' to" in text and "xy pad.json" in text
    assert "Permission denied" in text or "Operation not permitted" in text
    assert (read_only_folder / "xy pad.json").read_bytes() == before
    assert sorted(p.name for p in read_only_folder.iterdir()) == ["xy pad.json"]


def test_a_disk_that_fills_up_during_a_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    """SIMULATED: os.fsync is made to fail with ENOSPC after the temp file was written."""
    save_mapping(tmp_path, fresh())
    before = (tmp_path / "xy pad.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    changed = fresh()
    changed.examples = []
    with pytest.raises(MappingError, match=r"cannot save mapping 'xy pad' to .*xy pad\.json: No space left on device"):
        save_mapping(tmp_path, changed)
    monkeypatch.undo()
    assert (tmp_path / "xy pad.json").read_bytes() == before
    assert no_temp_files(tmp_path)


def test_a_save_whose_final_rename_fails_removes_its_temp_file(tmp_path):
    """Real failure: the target name is taken by a folder, so os.replace refuses (root too)."""
    (tmp_path / "xy pad.json").mkdir()
    with pytest.raises(MappingError, match=r"cannot save mapping 'xy pad' to .*xy pad\.json: Is a directory"):
        save_mapping(tmp_path, fresh())
    assert no_temp_files(tmp_path) and (tmp_path / "xy pad.json").is_dir()


def test_a_folder_that_cannot_be_created_gives_a_mapping_error(tmp_path):
    (tmp_path / "a file").write_text("not a folder")
    with pytest.raises(MappingError, match=r"cannot create the folder .*a file/mappings"):
        save_mapping(tmp_path / "a file" / "mappings", fresh())


# ------------------------------------------------------------------------------------------------
# Files written by the first release

V01 = Path(__file__).parent / "data" / "mappings-v0.1"


@pytest.mark.parametrize("name", sorted(json.loads((V01 / "expected.json").read_text(encoding="utf-8"))))
def test_every_mapping_file_the_first_release_wrote_still_loads_the_same(tmp_path, name):
    """tests/data/mappings-v0.1 holds files written by ravemap 0.1's own code (its make.py), with what
    0.1 loaded from each; today's ravemap loads the same examples, settings and predictions."""
    want = json.loads((V01 / "expected.json").read_text(encoding="utf-8"))[name]
    mapping = load_mapping(V01, name)
    assert [[list(e.input), list(e.output)] for e in mapping.examples] == want["examples"]
    assert mapping.settings.to_dict() == want["settings"]
    assert (list(mapping.input_names), list(mapping.output_names)) == (want["input_names"], want["output_names"])
    assert (mapping.extras, mapping.training, mapping.model) == (want["extras"], want["training"], want["model"])
    assert (list(mapping.output_dims), list(mapping.output_range)) == (want["output_dims"], want["output_range"])
    if want["predictions"] is None:
        assert mapping.regressor is None
    else:
        assert mapping.regressor.predict(np.array(want["queries"])).tolist() == want["predictions"]
    saved = save_mapping(tmp_path, mapping)  # and written again, it is the same file
    assert saved.read_bytes() == (V01 / f"{name}.json").read_bytes()
