"""Every setting, validated once in `load_config`.

`config.yaml` is read with PyYAML and checked against the pydantic models below: an
unknown key (with a did-you-mean), a wrong type or a value out of range raises one
`ConfigError` that names the key, the bad value and what is allowed. Which file is read
(`--config`, `RAVEMAP_CONFIG`, the user's, the checkout's, the packaged one) is decided by
`ravemap.locations.find_config`. Relative paths in the file are resolved against the file's
folder, so the daemon can be started from anywhere; a file that leaves out `engine.model` or
`engine.loop` plays the embedded default, and one that leaves out a `paths` folder (or leaves
it empty) uses the default folder of how ravemap runs (`ravemap.locations.default_folder`).
Command-line overrides are applied by the CLI after loading, through `with_overrides`, and
validated the same way.

The README's config reference table is generated from these models' field
descriptions (`config_reference()`), so the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ravemap import locations
from ravemap.errors import ConfigError
from ravemap.mapping.settings import DEFAULT as TRAINING
from ravemap.mapping.settings import TRAINER_STALL_S, Epochs, Hidden, Kind, LearningRate, Seed
from ravemap.validation import explain


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class EngineConfig(Section):
    model: Path = Field(Path("models/default.ts"), description="RAVE / nn~ TorchScript export to play.")
    loop: Path = Field(Path("loops/default.wav"), description="Audio loop (WAV, FLAC, OGG; any rate).")
    source: Literal["loop", "input"] = Field(
        "loop", description="`loop` plays `engine.loop`; `input` takes live audio from `audio.input_device`."
    )
    encode: Literal["cached", "live"] = Field(
        "cached",
        description="`cached` encodes the loop once at load; `live` encodes every block "
        "(a variational model then varies each time round).",
    )
    latency: Literal["auto", "fixed"] = Field(
        "auto",
        description="`auto` times the model on this machine (at start and after each model swap) and picks the "
        "smallest safe block size and lead; `fixed` uses `block_size` and `ahead_blocks` (2048 and 3 when empty).",
    )
    block_size: int | None = Field(
        None, ge=32, le=65536,
        description="Samples per block, a multiple of the model's ratio; empty: chosen by `latency`.",
    )
    ahead_blocks: int | None = Field(
        None, ge=1, le=32,
        description="Whole blocks kept ready ahead of the sound card; empty: the lead `latency` chooses.",
    )
    lead_recovery_s: float = Field(
        30.0, ge=0.0, le=86400.0,
        description="After this many seconds with no underrun, a lead raised by underruns comes back down by one "
        "period (again after each such stretch), never below the chosen lead; loop only (live input keeps its "
        "delay); 0: never.",
    )
    torch_threads: int = Field(1, ge=1, le=64, description="Torch intra-op threads for the model.")
    transfer: bool = Field(True, description="Style transfer at start: on plays the model, off the dry loop.")
    gain_db: float = Field(0.0, ge=-120.0, le=24.0, description="Output gain in dB.")
    smoothing_ms: float = Field(50.0, ge=0.0, le=10000.0, description="Glide time of latent offsets and scales.")
    mix: float = Field(
        1.0, ge=0.0, le=1.0,
        description="Dry/wet at start: 0 plays the source delayed by the model's delay (bit-exact), 1 the model.",
    )
    model_delay: int | None = Field(
        None, ge=0, le=192000,
        description="Samples the dry path is delayed by to line up with the model; empty: measured at load "
        "(the loop cross-correlated with its reconstruction).",
    )
    input_gain_db: float = Field(
        0.0, ge=-60.0, le=24.0, description="Gain in dB on the loop or live input, before the encoder."
    )
    limit_db: float | None = Field(
        -1.0, ge=-60.0, le=0.0,
        description="Ceiling in dBFS of the output's look-ahead limiter (adds its 5 ms look-ahead to the "
        "latency); empty: no limiter, only the last-resort clip at [-1, 1].",
    )


class LatentConfig(Section):
    dims: tuple[int, ...] = Field(
        (0, 1, 2, 3), description="Latent dimensions the offsets (sliders, mapping) move, in order."
    )
    range: tuple[float, float] = Field((-3.0, 3.0), description="Offsets are clamped to [low, high].")
    scale: float | tuple[float, ...] = Field(
        1.0,
        description="The model's own latent is multiplied by this before the offsets are added, on every latent "
        "dim of the model: one number (-4..4) for all, or a list, one per dim (checked at load); 0 removes the "
        "loop's influence.",
    )
    jitter: float = Field(
        0.0, ge=0.0, le=3.0, description="Std of Gaussian noise added to every latent dim, a new draw per frame."
    )

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float | tuple[float, ...]) -> float | tuple[float, ...]:
        values = (value,) if isinstance(value, int | float) else value
        if not values:
            raise ValueError("give one number for every dim, or a list with one per latent dim of the model")
        if any(not -4.0 <= v <= 4.0 for v in values):
            raise ValueError("scale must be in range -4..4")
        return value

    @field_validator("dims")
    @classmethod
    def _dims(cls, dims: tuple[int, ...]) -> tuple[int, ...]:
        if not dims:
            raise ValueError("list at least one latent dimension")
        if any(d < 0 for d in dims) or len(set(dims)) != len(dims):
            raise ValueError("dims must be distinct non-negative integers")
        return dims

    @field_validator("range")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not low < high:
            raise ValueError("range must be [low, high] with low < high")
        return value


class AudioConfig(Section):
    device: str | int = Field(
        "default",
        description="Output device: `default`, a name (or part of one), an index from `ravemap devices`, "
        "or `none` to run clocked in real time with no device.",
    )
    input_device: str | int = Field("default", description="Input device for `engine.source: input`.")
    samplerate: int | None = Field(
        None, ge=8000, le=192000,
        description="Device rate; empty uses the model's rate if the device takes it, else the device's.",
    )
    channels: int = Field(2, ge=1, le=64, description="Output channels; a mono model is copied to each.")
    latency: Literal["low", "high"] | float = Field(
        "low", description="PortAudio latency hint: `low`, `high` or seconds (the device's own buffering)."
    )


def _folder(kind: str, description: str) -> Any:
    """A `paths` field whose default is computed when validated: the checkout's folder or the data folder's."""
    return Field(
        default_factory=lambda: locations.default_folder(kind), description=description,
        json_schema_extra={"shown_default": f"`{kind}` of the checkout; installed, `<user data dir>/ravemap/{kind}`"},
    )


class PathsConfig(Section):
    """Empty or left out: the default folder of how ravemap runs (`ravemap.locations.default_folder`)."""

    models_dir: Path = _folder("models", "Folder that `/ravemap/model` names resolve in.")
    loops_dir: Path = _folder("loops", "Folder that `/ravemap/loop` names resolve in.")
    mappings_dir: Path = _folder("mappings", "Folder of saved mappings.")

    @field_validator("models_dir", "loops_dir", "mappings_dir", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or value == "":
            return locations.default_folder(str(info.field_name).removesuffix("_dir"))
        return value


class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    stats_interval_s: float = Field(
        10.0, ge=0.0, description="Seconds between status lines while serving (0: only at exit)."
    )


class OscRoute(Section):
    address: str = Field(description="OSC address pattern-free path, e.g. /ravemap/xy")
    dims: tuple[int, ...] | None = Field(None, description="input dims the arguments go to; empty: in order")
    range: tuple[float, float] = Field((0.0, 1.0), description="the sender's range, mapped onto 0..1")

    @field_validator("address")
    @classmethod
    def _address(cls, address: str) -> str:
        if not address.startswith("/") or any(c in address for c in " #*,?[]{}"):
            raise ValueError("an OSC address starts with / and has no spaces or pattern characters")
        return address

    @field_validator("range")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] == value[1]:
            raise ValueError("range must be [low, high] with low != high")
        return value


DEFAULT_ROUTES = (
    OscRoute(address="/ravemap/xy", dims=(0, 1)),
    OscRoute(address="/xy", dims=(0, 1)),
    OscRoute(address="/xy1", dims=(0, 1)),
    OscRoute(address="/1/xy1", dims=(0, 1)),
    OscRoute(address="/wek/inputs", dims=None),
)

PRIVATE_AND_LOOPBACK = (
    "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "fc00::/7", "fe80::/10",
)


class InputsConfig(Section):
    size: int = Field(2, ge=1, le=64, description="Length of the input vector (x, y by default).")


class OscConfig(Section):
    host: str = Field("0.0.0.0", description="Address the control port binds to (127.0.0.1: this machine only).")
    port: int = Field(8000, ge=1, le=65535, description="UDP control port.")
    feedback_port: int = Field(9000, ge=1, le=65535, description="Replies and feedback go to each sender's IP here.")
    feedback_targets: tuple[str, ...] = Field(
        (), description="Extra `host:port` targets for feedback (e.g. a Max patch doing nn~)."
    )
    allow: tuple[str, ...] = Field(
        PRIVATE_AND_LOOPBACK,
        description="CIDR ranges that may send control messages; others are ignored and counted.",
    )
    zeroconf: bool = Field(True, description="Advertise the control port as `_osc._udp` over mDNS (TouchOSC browse).")
    service_name: str = Field("ravemap", description="Name shown in TouchOSC's browse list.")
    latent_feedback_hz: float = Field(30.0, gt=0, le=200, description="Most `/ravemap/latent` feedback per second.")
    wekinator_input_port: int | None = Field(
        6448, ge=1, le=65535,
        description="Wekinator's input port: the same messages as `osc.port`, so Wekinator input programs "
        "work unchanged (empty: off; if the port is taken, one warning and everything else runs).",
    )
    wekinator_units: Literal["unit", "latent"] = Field(
        "unit",
        description="Values of `/wekinator/control/outputs` and `/wek/outputs`: `unit` is 0..1 per output, "
        "mapped linearly onto `latent.range`, like Wekinator's continuous outputs; `latent` sends latent units.",
    )
    wekinator_outputs: bool = Field(
        True, description="Send `/wek/outputs f...` in run mode for each new input, like Wekinator does."
    )
    wekinator_host: str = Field("127.0.0.1", description="Host for `/wek/outputs`.")
    wekinator_port: int = Field(12000, ge=1, le=65535, description="Port for `/wek/outputs`.")
    queue_size: int = Field(
        1024, ge=16, le=1_000_000,
        description="Pending control events kept; when full, new commands are dropped and counted, "
        "and the newest value of each slider or input waits beside the queue.",
    )
    routes: tuple[OscRoute, ...] = Field(
        DEFAULT_ROUTES, description="OSC addresses whose numbers feed the input vector."
    )

    @field_validator("feedback_targets")
    @classmethod
    def _targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        for target in targets:
            host, _, port = target.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{target!r}: give host:port, e.g. 127.0.0.1:9001")
        return targets

    @model_validator(mode="after")
    def _no_feedback_loop(self) -> OscConfig:
        """Feedback sent to the control port itself would answer itself forever."""
        if self.feedback_port == self.port:
            raise ValueError(f"feedback_port {self.feedback_port} is the control port: choose another port")
        own = {"127.0.0.1", "localhost", "::1", "0.0.0.0", self.host}
        for target in self.feedback_targets:
            host, _, port = target.rpartition(":")
            if int(port) == self.port and (host.strip("[]") in own or host.startswith("127.")):
                raise ValueError(f"feedback target {target} is this daemon's own control port: choose another")
        if self.feedback_port == self.wekinator_input_port:
            raise ValueError(f"feedback_port {self.feedback_port} is the Wekinator input port "
                             "(wekinator_input_port): choose another port")
        local = self.wekinator_host in own or self.wekinator_host.startswith("127.")
        if self.wekinator_outputs and local and self.wekinator_port in (self.port, self.wekinator_input_port):
            raise ValueError(f"wekinator_port {self.wekinator_port} on {self.wekinator_host} is one of this "
                             "daemon's own control ports: choose another port")
        return self

    @field_validator("allow")
    @classmethod
    def _allow(cls, ranges: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for cidr in ranges:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR range like 192.168.0.0/16") from None
        return ranges


class WebConfig(Section):
    enabled: bool = Field(True, description="Serve the control page (HTTP and WebSocket) for any browser.")
    port: int = Field(
        8080, ge=0, le=65535,
        description="TCP port of the control page, bound on `osc.host` and guarded by `osc.allow` "
        "(0: any free port; the ready line says which).",
    )


class MidiCC(Section):
    cc: int = Field(ge=0, le=127, description="controller number")
    dim: int = Field(ge=0, description="input dim it drives")
    channel: int | None = Field(None, ge=1, le=16, description="1..16, or empty for any channel")
    fine: bool = Field(False, description="14-bit: `cc` is the MSB (0..31), cc+32 the LSB")


class MidiControl(Section):
    cc: int = Field(ge=0, le=127, description="controller number")
    control: str = Field(description="the chain control it drives across its range: mix, jitter, limit, input gain, "
                                     "autopilot, autopilot rate, scale (every dim) or scale N (dim N)")
    channel: int | None = Field(None, ge=1, le=16, description="1..16, or empty for any channel")

    @field_validator("control")
    @classmethod
    def _control(cls, name: str) -> str:
        from ravemap.control.vocabulary import midi_control

        midi_control(name)  # ValueError naming the names allowed
        return " ".join(name.split())


class MidiAction(Section):
    action: Literal["record", "record_once", "train", "run", "clear", "undo", "transfer", "scene"] = Field(
        description="what the note or CC triggers (`scene`: recalls scene `scene`)"
    )
    note: int | None = Field(None, ge=0, le=127)
    cc: int | None = Field(None, ge=0, le=127)
    channel: int | None = Field(None, ge=1, le=16)
    scene: int | None = Field(None, ge=1, le=128, description="the scene a `scene` action recalls")
    morph: float = Field(0.0, ge=0.0, le=600.0, description="a `scene` action's morph time, in `tempo.morph_unit`")

    @model_validator(mode="after")
    def _scene(self) -> MidiAction:
        if (self.action == "scene") != (self.scene is not None):
            raise ValueError("a `scene` action names its scene (scene: 1..128), and only a scene action does")
        return self


class MidiConfig(Section):
    enabled: bool = Field(True, description="Listen for MIDI input.")
    api: Literal["default", "alsa", "jack", "coremidi", "winmm"] = Field(
        "default", description="rtmidi API: default is ALSA on Linux, CoreMIDI on macOS, WinMM on Windows."
    )
    port: str = Field("all", description="Input ports whose name contains this text, or `all`.")
    virtual_port: str | None = Field(
        "ravemap", description="Also open a MIDI input of ravemap's own with this name (empty: none)."
    )
    cc: tuple[MidiCC, ...] = Field(
        (MidiCC(cc=1, dim=0), MidiCC(cc=2, dim=1)), description="Control changes that feed input dims."
    )
    pitchbend: int | None = Field(None, ge=0, description="Input dim pitch bend drives (empty: none).")
    pitchbend_channel: int | None = Field(None, ge=1, le=16, description="Pitch bend channel (empty: any).")
    actions: tuple[MidiAction, ...] = Field(
        (), description="Notes or CCs that record, train, run, ... (on note-on or CC >= 64)."
    )
    controls: tuple[MidiControl, ...] = Field(
        (), description="Control changes that drive the performer's chain (mix, jitter, limit, scale N, ...), "
        "0..127 across the control's range."
    )


class MappingConfig(Section):
    name: str = Field("default", description="Mapping loaded at start and saved to `paths.mappings_dir`.")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        from ravemap.names import check_name

        return check_name(name, "mapping name")

    regressor: Kind = Field(TRAINING.kind, description="Regressor for a new mapping.")
    hidden: Hidden = Field(
        TRAINING.hidden, description="MLP hidden layer sizes: 1 to 8 layers of 1 to 1024 units.")
    epochs: Epochs = Field(
        TRAINING.epochs, description="Most training epochs (early stop may end sooner).")
    learning_rate: LearningRate = Field(TRAINING.learning_rate, description="MLP learning rate.")
    seed: Seed = Field(
        TRAINING.seed, description="Seed (0 to 2^63-1): the same examples train the same mapping.")
    save_delay_s: float = Field(
        0.5, ge=0, le=60,
        description="Changes are saved this long after they happen (a big mapping no sooner than 4x its last "
                    "save's duration after that save).")
    trainer_stall_s: float = Field(
        TRAINER_STALL_S, ge=2, le=600,
        description="A trainer process that answers nothing this long (stopped, swapped out, hung) is replaced "
                    "and its training reported as failed; raise it on a machine that swaps.")


class TempoConfig(Section):
    bpm: float = Field(120.0, ge=20.0, le=300.0, description="Tempo of the internal clock, in beats per minute "
                       "(`/ravemap/tempo f`); with `source: midi`, the tempo until MIDI clock comes.")
    source: Literal["internal", "midi"] = Field(
        "internal", description="`internal`: the clock runs at `bpm`; `midi`: it follows MIDI clock (24 per quarter "
        "note) with start, stop and continue, from the MIDI input ports `midi.port` opens.")
    quantize: Literal["off", "beat", "bar"] = Field(
        "off", description="A scene recall (and a gesture's playback) starts at once (`off`), on the next beat, or "
        "on the next bar line (`/ravemap/quantize s`).")
    beats_per_bar: int = Field(4, ge=1, le=32, description="Beats in a bar, for `quantize: bar` and the bar phase.")
    morph_unit: Literal["seconds", "beats"] = Field(
        "seconds", description="The unit of a scene recall's morph time (`/ravemap/scene/recall i f`).")

    @field_validator("quantize", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


class Config(Section):
    engine: EngineConfig = EngineConfig()
    latent: LatentConfig = LatentConfig()
    audio: AudioConfig = AudioConfig()
    paths: PathsConfig = PathsConfig()
    log: LogConfig = LogConfig()
    inputs: InputsConfig = InputsConfig()
    osc: OscConfig = OscConfig()
    midi: MidiConfig = MidiConfig()
    web: WebConfig = WebConfig()
    mapping: MappingConfig = MappingConfig()
    tempo: TempoConfig = TempoConfig()
    source_file: Path | None = Field(None, exclude=True, description="Where this config was read from.")

    def resolve(self, base: Path) -> Config:
        """Resolve relative paths against `base` (the config file's folder)."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else (base / p)

        return self.model_copy(
            update={
                "engine": self.engine.model_copy(
                    update={"model": fix(self.engine.model), "loop": fix(self.engine.loop)}
                ),
                "paths": PathsConfig(
                    models_dir=fix(self.paths.models_dir),
                    loops_dir=fix(self.paths.loops_dir),
                    mappings_dir=fix(self.paths.mappings_dir),
                ),
            }
        )


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file: `path`, else the one `ravemap.locations.find_config` finds.

    Relative paths are resolved against the file's folder; `engine.model` and `engine.loop` left
    out of the file are the embedded default's."""
    path = locations.find_config(path).path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(raw).__name__}")
    config = validate(raw, str(path)).resolve(path.resolve().parent)
    engine = raw.get("engine")
    given: dict[str, Any] = engine if isinstance(engine, dict) else {}
    left_out = {key: file() for key, file in (("model", locations.embedded_model), ("loop", locations.embedded_loop))
                if key not in given}
    if left_out:
        config = config.model_copy(update={"engine": config.engine.model_copy(update=left_out)})
    return config.model_copy(update={"source_file": path})


def validate(raw: dict[str, Any], where: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(explain(err.errors(), where, Config)) from None


def with_overrides(config: Config, **dotted: Any) -> Config:
    """Return a copy with `section__key=value` overrides applied and validated."""
    data = config.model_dump(exclude={"source_file"})
    for name, value in dotted.items():
        if value is None:
            continue
        section, key = name.split("__", 1)
        data[section][key] = value
    checked = validate(data, "command line")
    return checked.model_copy(update={"source_file": config.source_file})


def config_reference() -> list[tuple[str, str, str]]:
    """(key, default, description) for every setting, in file order, for the README."""
    rows = []
    for section_name, section_field in Config.model_fields.items():
        if section_name == "source_file":
            continue
        section = section_field.annotation
        assert isinstance(section, type) and issubclass(section, BaseModel)
        for key, field in section.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            default = field.default
            if "shown_default" in extra:
                shown = str(extra["shown_default"])
            else:
                shown = "empty" if default is None else _yaml_scalar(default)
            rows.append((f"{section_name}.{key}", shown, field.description or ""))
    return rows


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
