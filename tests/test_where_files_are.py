"""Which config ravemap reads, where it keeps mappings, and the set-up commands, run from the checkout.

The same rules installed (a wheel in a fresh venv) are in test_installed_package.py.
"""

from __future__ import annotations

import pytest

from ravemap import locations
from ravemap.config import load_config
from ravemap.control.events import Inbox
from ravemap.control.midi import MidiInput
from ravemap.names import resolve_in
from tests.conftest import REPO, ravemap, write_config
from tests.osc_peer import Daemon, OscPeer


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """Empty user config and data folders of this test's own."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.delenv(locations.ENV_CONFIG, raising=False)
    return tmp_path


def test_from_the_checkout_the_checkouts_config_and_folders_are_used(user_dirs):
    config = load_config()
    assert config.source_file == REPO / "config.yaml"
    assert config.engine.model == REPO / "models" / "default.ts"
    assert config.paths.models_dir == REPO / "models"
    assert config.paths.loops_dir == REPO / "loops"
    assert config.paths.mappings_dir == REPO / "mappings"


def test_a_mapping_that_cannot_be_saved_at_exit_is_recovered_into_the_user_data_folder(user_dirs):
    assert locations.recovery_folder() == user_dirs / "user-data" / "ravemap" / "recovered"


def test_the_config_is_the_first_of_option_environment_user_file_checkout(user_dirs, monkeypatch):
    user_file = user_dirs / "user-config" / "ravemap" / "config.yaml"
    user_file.parent.mkdir(parents=True)
    write_config(user_file, osc={"port": 8101})
    from_env = write_config(user_dirs / "env.yaml", osc={"port": 8102})
    explicit = write_config(user_dirs / "explicit.yaml", osc={"port": 8103})

    assert load_config().osc.port == 8101
    assert locations.find_config().why == "the user's config file"
    monkeypatch.setenv("RAVEMAP_CONFIG", str(from_env))
    assert load_config().osc.port == 8102
    assert load_config(explicit).osc.port == 8103
    user_file.unlink()
    monkeypatch.delenv("RAVEMAP_CONFIG")
    assert load_config().source_file == REPO / "config.yaml"


def test_a_config_named_by_the_environment_must_exist(user_dirs):
    result = ravemap("paths", env={"RAVEMAP_CONFIG": str(user_dirs / "nope.yaml")})
    assert result.returncode == 2
    assert "nope.yaml: no such config file (given by RAVEMAP_CONFIG)" in result.stderr


def test_a_config_that_leaves_out_model_loop_and_folders_gets_the_defaults(user_dirs):
    config = load_config(write_config(user_dirs / "short.yaml", osc={"port": 8104}))
    assert config.engine.model == locations.embedded_model() == REPO / "models" / "default.ts"
    assert config.engine.loop == locations.embedded_loop() == REPO / "loops" / "default.wav"
    assert config.paths.mappings_dir == REPO / "mappings"


def test_relative_paths_in_a_config_are_relative_to_its_folder(user_dirs):
    (user_dirs / "set").mkdir()
    config = load_config(write_config(user_dirs / "set" / "c.yaml", engine={"model": "m/x.ts"},
                                      paths={"mappings_dir": "maps"}))
    assert config.engine.model == user_dirs / "set" / "m" / "x.ts"
    assert config.paths.mappings_dir == user_dirs / "set" / "maps"
    assert config.paths.models_dir == REPO / "models"


def test_the_name_default_reaches_ravemaps_own_model_and_loop_from_any_folder(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    assert resolve_in(empty, "default", (".ts",), "model", builtin=locations.embedded_model()) \
        == locations.embedded_model()
    assert resolve_in(tmp_path / "absent", "default.wav", (".wav",), "loop", builtin=locations.embedded_loop()) \
        == locations.embedded_loop()
    own = empty / "default.ts"
    own.write_bytes(b"the user's own")
    assert resolve_in(empty, "default", (".ts",), "model", builtin=locations.embedded_model()) == own.resolve()
    with pytest.raises(ValueError, match="no model 'other'"):
        resolve_in(empty, "other", (".ts",), "model", builtin=locations.embedded_model())


def test_init_writes_a_config_and_folders_and_a_second_init_changes_nothing(tmp_path):
    folder = tmp_path / "my set"
    first = ravemap("init", str(folder))
    assert first.returncode == 0, first.stderr
    config = folder / "config.yaml"
    assert config.is_file() and all((folder / kind).is_dir() for kind in ("models", "loops", "mappings"))
    assert f"ravemap serve --config {config}" in first.stdout
    text = config.read_text()
    assert text.startswith("# ravemap configuration, written by `ravemap init`")
    assert "\n  # model: models/my_model.ts" in text and "\n  models_dir: models" in text

    loaded = load_config(config)
    assert loaded.engine.model == locations.embedded_model()
    assert loaded.paths.models_dir == folder / "models" and loaded.paths.mappings_dir == folder / "mappings"

    config.write_text(text.replace("  port: 8000", "  port: 8123"))  # the user edits it
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    second = ravemap("init", str(folder))
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    assert load_config(config).osc.port == 8123


def test_init_keeps_a_config_already_there_and_makes_the_missing_folders(tmp_path):
    config = write_config(tmp_path / "config.yaml", osc={"port": 8124})
    result = ravemap("init", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"kept {config} (already there)" in result.stdout
    assert load_config(config).osc.port == 8124
    assert (tmp_path / "mappings").is_dir()


def test_init_refuses_a_file_where_a_folder_belongs(tmp_path):
    (tmp_path / "models").write_text("not a folder")
    result = ravemap("init", str(tmp_path))
    assert result.returncode == 2 and "models exists and is not a folder" in result.stderr


def test_layouts_copies_the_controller_files_and_keeps_edited_ones(tmp_path):
    out = tmp_path / "layouts"
    result = ravemap("layouts", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("touchosc/ravemap.tosc", "puredata/ravemap.pd", "max/ravemap.maxpat", "max/ravemap-nn.maxpat"):
        assert (out / name).read_bytes() == (REPO / "examples" / name).read_bytes()
    (out / "puredata" / "ravemap.pd").write_text("edited")
    again = ravemap("layouts", "--out", str(out))
    assert "nothing changed" in again.stdout
    assert (out / "puredata" / "ravemap.pd").read_text() == "edited"


def test_paths_and_version_say_where_things_are(tmp_path):
    result = ravemap("paths", "--config", str(write_config(tmp_path / "c.yaml", paths={"mappings_dir": "maps"})))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["running"] == f"from the checkout {REPO}"
    assert lines["config"].startswith(f"{tmp_path / 'c.yaml'}  (--config)")
    assert lines["mappings"].startswith(str(tmp_path / "maps"))
    assert lines["models"].startswith(str(REPO / "models"))
    version = ravemap("--version")
    assert version.returncode == 0 and version.stdout.startswith("ravemap 0.")


def test_a_model_named_default_plays_from_an_empty_models_folder(tmp_path, tiny_model, loop_file):
    models = tmp_path / "models"
    models.mkdir()
    peer = OscPeer(0)
    daemon = Daemon(tmp_path, tiny_model, loop_file, peer.port, config={"paths": {"models_dir": str(models)}})
    peer.daemon = ("127.0.0.1", daemon.port)
    try:
        peer.send("/ravemap/model", "default")
        assert peer.wait_for("/ravemap/model", timeout=60) == ["default.ts"]
    finally:
        daemon.stop()
        peer.close()


def test_no_alsa_sequencer_gives_one_info_line_and_no_alsa_noise(capfd, caplog):
    from pathlib import Path

    if Path("/dev/snd/seq").exists():
        pytest.skip("this machine has an ALSA sequencer: MIDI opens, nothing to hide")
    from ravemap.config import validate

    caplog.set_level("INFO", logger="ravemap.midi")
    opened = MidiInput(validate({"midi": {"api": "alsa"}}), Inbox(16)).open()
    assert opened == []
    assert "ALSA lib" not in capfd.readouterr().err
    assert "MIDI is off" in caplog.text
