"""Put the audio side together from a `Config`: model, loop, processor, engine, output.

`prepare_processor` is what `ravemap serve`, `ravemap render` and a hot swap all use to
turn file paths into a ready `BlockProcessor`. `Playback` owns the engine thread and the
output (a PortAudio stream, or the headless clock for `audio.device: none`), started in
that order and stopped in reverse.

Threads: `Playback.start/stop` on the daemon's main thread. `swap_model`/`swap_loop`
load and encode on the calling thread (a control or loader thread), then hand the result
to the engine thread, which crossfades between two blocks; if loading fails, the error is
raised to the caller and the old model or loop keeps playing. Each swap starts from the
processor handed over last (`newest`), not the one the engine plays this instant, so a loop
swap right after a model swap keeps the new model (and the other way round).

A swap beside the playing engine (issue 23, fault 7): while it is prepared, the engine's lead is
held at `PREPARE_LEAD_S` (300 ms; logged), since `torch.jit.load` holds the GIL for its whole
length and nothing can split it (a loop swap holds it too: encoding competes for the cores);
it drains back to the chosen lead once the new processor plays. A model file that played before
in this process (same path, size and modification time) reuses its latency choice and measured
delay (`_measured`): a swap back to it is not timed again, and gets the lead it had. The
processor the engine replaced is freed on the calling thread (`_retire`), while the lead is still
held: letting go of a model holds the GIL for 15-45 ms. The loader thread keeps its normal
priority: at a lower one it is preempted while holding the GIL, and the engine waits on it (more
late periods measured on the 2-core machine, not fewer).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ravemap import locations
from ravemap.audio import latency
from ravemap.audio.chain import FOLLOWS, measure_model_delay
from ravemap.audio.controls import EngineControls
from ravemap.audio.engine import Engine
from ravemap.audio.headless import HeadlessOutput
from ravemap.audio.latency import LatencyChoice
from ravemap.audio.live import LiveInput
from ravemap.audio.model import ModelInfo, RaveModel, load_model
from ravemap.audio.processor import BlockProcessor, ProcessorSettings, check_settings, encode_loop
from ravemap.audio.ring import FrameRing
from ravemap.audio.source import Loop, fit_to_ratio, load_loop
from ravemap.audio.status import ENGINE_OFF
from ravemap.config import Config
from ravemap.errors import ConfigError, DeviceError

if TYPE_CHECKING:
    from ravemap.audio.stream import AudioOutput

log = logging.getLogger("ravemap.playback")

PREPARE_LEAD_S = 0.3  # the lead held while a model to swap in loads (`Playback._preparing`)
PREPARE_WAIT_S = 2.0  # longest wait for the engine to fill that lead before loading anyway


def processor_settings(config: Config, block_size: int) -> ProcessorSettings:
    return ProcessorSettings(
        block_size=block_size,
        latent_dims=tuple(config.latent.dims),
        encode=config.engine.encode,
        smoothing_ms=config.engine.smoothing_ms,
        model_delay=config.engine.model_delay or 0,
        limiter=config.engine.limit_db is not None,
    )


def make_controls(config: Config) -> EngineControls:
    return EngineControls(
        n_offsets=len(config.latent.dims),
        offset_range=tuple(config.latent.range),  # type: ignore[arg-type]
        transfer=config.engine.transfer,
        gain_db=config.engine.gain_db,
        scale=config.latent.scale,
        jitter=config.latent.jitter,
        mix=config.engine.mix,
        input_gain_db=config.engine.input_gain_db,
        limit_db=config.engine.limit_db,
    )


def prepare_processor(config: Config, controls: EngineControls, model: RaveModel | None = None,
                      model_path: Path | None = None, loop_path: Path | None = None,
                      warm_up: bool = True, live: LiveInput | None = None,
                      choice: LatencyChoice | None = None, delay: int | None = None) -> BlockProcessor:
    """Load what is not given, check it fits the config, encode the loop, choose the latency, warm up.

    With `live`, the source is live input instead of a loop file, and encoding is per block.
    `choice` reuses an earlier latency choice for the same model (a loop swap, or a model file
    that played before in this process); otherwise the block size and lead come from
    `engine.latency` (server/ravemap/audio/latency.py). `delay` likewise reuses the model's
    measured delay (`model_delay`).
    """
    if model is None:
        model = load_model(model_path or config.engine.model)
    info = model.info
    _check_scale(controls, info)
    if live is not None:
        settings = replace(processor_settings(config, info.ratio), encode="live")
        check_settings(settings, model)
        delay = model_delay(config, model) if delay is None else delay  # before timing: see below
        choice = choice or choose_latency(config, model, settings, timing_source(model))
        controls.fit_latent_size(info.latent_size, info.path.name)
        return BlockProcessor(model, live, replace(settings, block_size=choice.block, model_delay=delay), controls,
                              latency=choice)
    loop = load_loop(loop_path or config.engine.loop, info.sr, info.in_channels, info.ratio)
    settings = processor_settings(config, info.ratio)
    check_settings(settings, model)
    gain_db = controls.input_gain_db
    latents = encode_loop(model, loop, gain_db) if settings.encode == "cached" else None
    # The delay is measured before the latency is timed: timing plays as many blocks as this machine's speed
    # asks for, which leaves a streaming model's state somewhere else each time; measured first, it starts from
    # the state the load left, so the same model on the same loop always measures the same delay.
    delay = model_delay(config, model, loop, latents) if delay is None else delay
    choice = choice or choose_latency(config, model, settings, loop, latents)
    controls.fit_latent_size(info.latent_size, info.path.name)
    return BlockProcessor(model, loop, replace(settings, block_size=choice.block, model_delay=delay), controls,
                          latents=latents, warm_up=warm_up, latency=choice, encoded_gain_db=gain_db)


def _check_scale(controls: EngineControls, info: ModelInfo) -> None:
    """Refuse a `latent.scale` list that does not have one value per latent dim of this model (before any work)."""
    listed = controls.scale_list
    if listed is not None and len(listed) != info.latent_size:
        raise ConfigError(f"latent.scale: {len(listed)} values given but {info.path.name} has {info.latent_size} "
                          f"latent dims; give one number for every dim, or {info.latent_size} numbers")


_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its measured delay


def model_delay(config: Config, model: RaveModel, loop: Loop | None = None,
                latents: torch.Tensor | None = None) -> int:
    """The dry path's delay: `engine.model_delay`, else measured once per loaded model (on `loop`, or
    the embedded default loop for live input) before the model plays. A loop swap keeps the model's."""
    if config.engine.model_delay is not None:
        return config.engine.model_delay
    known = _MEASURED.get(model)
    if known is not None:
        return known
    info = model.info
    if loop is None:
        loop = load_loop(locations.embedded_loop(), info.sr, info.in_channels, info.ratio)
    if latents is None:
        latents = encode_loop(model, loop)
    ratio = info.ratio
    settings = ProcessorSettings(block_size=ratio * max(1, 2048 // ratio), latent_dims=tuple(config.latent.dims),
                                 encode="cached", smoothing_ms=0.0)
    neutral = EngineControls(len(settings.latent_dims), tuple(config.latent.range))  # type: ignore[arg-type]
    neutral.fit_latent_size(info.latent_size)
    before = model.snapshot()  # a streaming model's state: the measurement must leave no trace
    try:
        # Seeded, the warm-up included (it decodes, and leaves a streaming model's state behind): a decoder's
        # noise draws from torch's generator, and the same model on the same loop must always measure the
        # same delay, whatever was drawn before (a render and a daemon line up alike); the caller's draws go on.
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            processor = BlockProcessor(model, loop, settings, neutral, latents=latents)
            delay, strength = measure_model_delay(processor.next_block, loop, settings.block_size)
    finally:
        model.restore(before)
    if strength < FOLLOWS:
        log.warning("model delay of %s: its output does not follow the loudness of %s (match %.2f), so its "
                    "delay cannot be measured; the dry path is not delayed (set engine.model_delay)",
                    info.path.name, loop.path.name, strength)
    else:
        log.info("model delay of %s: %d samples (%.1f ms, match %.2f, measured on %s)", info.path.name, delay,
                 1000 * delay / info.sr, strength, loop.path.name)
    _MEASURED[model] = delay
    return delay


def choose_latency(config: Config, model: RaveModel, settings: ProcessorSettings, source: Loop,
                   latents: torch.Tensor | None = None) -> LatencyChoice:
    """Block size and lead for `model` on this machine, as `engine.latency` and the explicit values say."""
    engine = config.engine
    ratio = model.info.ratio
    if engine.latency == "fixed":
        block = engine.block_size or ratio * max(1, latency.FIXED_BLOCK // ratio)
        return LatencyChoice(block, None, engine.ahead_blocks or latency.FIXED_AHEAD, auto=False)

    def measure(block: int) -> latency.BlockTiming:
        # Private controls: the timing plays the model (transfer on) whatever the performer set.
        timing_controls = EngineControls(len(settings.latent_dims), tuple(config.latent.range),  # type: ignore[arg-type]
                                         transfer=True)
        processor = BlockProcessor(model, source, replace(settings, block_size=block), timing_controls,
                                   latents=latents, warm_up=False)
        with torch.inference_mode():
            return latency.time_blocks(processor.next_block, block, model.info.sr)

    return latency.choose(ratio, model.info.sr, measure, engine.block_size, engine.ahead_blocks)


def timing_source(model: RaveModel, seconds: float = 1.0) -> Loop:
    """Noise at the model's rate and channels: what live input is timed on before it plays."""
    info = model.info
    noise = np.random.default_rng(0).standard_normal((info.in_channels, int(seconds * info.sr)))
    samples = fit_to_ratio((0.1 * noise).astype(np.float32), info.ratio)
    return Loop(path=Path("<timing>"), samples=samples, sr=info.sr, file_sr=info.sr)


class Playback:
    """The engine thread plus an output, started and stopped as one.

    Give it a ready processor (loop source), or only a model with `engine.source: input`:
    then `start` opens a duplex device and builds the processor on its live input.
    """

    def __init__(self, config: Config, processor: BlockProcessor | None, controls: EngineControls,
                 model: RaveModel | None = None):
        if processor is None and model is None:
            raise ValueError("give a processor, or a model for live input")
        self.config = config
        self.controls = controls
        self.engine: Engine | None = None
        self.output: AudioOutput | HeadlessOutput | None = None
        self._processor = processor
        self._model = processor.model if processor is not None else model
        self._swap_lock = threading.Lock()  # one hot swap at a time; never touched by audio threads
        self._measured: dict[tuple, tuple[LatencyChoice, int]] = {}  # model file -> its choice and delay
        if processor is not None:
            self._remember(processor)
        self._newest: BlockProcessor | None = None  # handed over last (under _swap_lock)
        self._started = False
        self.abandoned: list = []  # lost streams PortAudio cannot close (see reopen_output)

    @classmethod
    def from_config(cls, config: Config, controls: EngineControls) -> Playback:
        """Load the model (and the loop, unless the source is live input) named in the config."""
        if config.engine.source == "input":
            if _is_none(config.audio.device):
                raise ConfigError(
                    "engine.source: 'input' needs an audio device, but audio.device is none; "
                    "choose a device or use engine.source: loop"
                )
            return cls(config, None, controls, model=load_model(config.engine.model))
        return cls(config, prepare_processor(config, controls), controls)

    @property
    def processor(self) -> BlockProcessor:
        if self.engine is not None:
            return self.engine.processor
        assert self._processor is not None
        return self._processor

    @property
    def newest(self) -> BlockProcessor:
        """What plays from the next block on: the processor handed over last, else the playing one."""
        newest = self._newest
        return newest if newest is not None else self.processor

    def start(self) -> None:
        config = self.config
        assert self._model is not None
        info = self._model.info
        channels = config.audio.channels
        if _is_none(config.audio.device):
            assert self._processor is not None
            rate = config.audio.samplerate or info.sr
            period = HeadlessOutput.PERIOD
            self.engine = Engine(self._processor, rate, channels, period_hint=period,
                                 lead_recovery_s=config.engine.lead_recovery_s)
            self.output = HeadlessOutput(self.engine.ring, rate, period)
            self.engine.start()
        else:
            from ravemap.audio import stream  # imports sounddevice only when a device is wanted

            dev = stream.resolve_device(config.audio.device, "output")
            channels = min(channels, dev.max_output_channels)
            rate = stream.pick_samplerate(dev, config.audio.samplerate, info.sr, channels)
            input_ring = input_dev = None
            if self._processor is None:  # live input: the processor reads what the callback captures
                input_dev = stream.resolve_device(config.audio.input_device, "input")
                in_channels = min(max(info.in_channels, 1), input_dev.max_input_channels)
                input_ring = FrameRing(rate, in_channels)  # one second of input
                live = LiveInput(input_ring, rate, info.sr, info.in_channels, name=input_dev.name)
                self._processor = prepare_processor(config, self.controls, model=self._model, live=live)
                self._remember(self._processor)
            self.engine = Engine(self._processor, rate, channels, period_hint=stream.period_hint(dev, rate),
                                 lead_recovery_s=config.engine.lead_recovery_s)
            self.output = stream.AudioOutput(self.engine.ring, dev, rate, config.audio.latency,
                                             input_ring=input_ring, input_device=input_dev)
            self.engine.start(prime_with_silence=input_ring is not None)
        try:
            self.output.start()
        except Exception:
            self.engine.stop()
            raise
        self._started = True

    def stop(self) -> None:
        if self.output is not None and self.output not in self.abandoned:
            self.output.stop()
        if self.engine is not None:
            self.engine.stop()

    def output_lost(self) -> bool:
        """True when the device's stream has stopped on its own (unplugged, sound server gone)."""
        if self.output is None or isinstance(self.output, HeadlessOutput) or not self._started:
            return False
        return not self.output.active

    def reopen_output(self) -> None:
        """Open the device again after it was lost; raises DeviceError while it is still gone.

        The lost stream is abandoned, never stopped or closed: with PortAudio's JACK API those
        calls block for good once the server has gone. A new stream on the same PortAudio
        instance works as soon as the server is back. The engine thread runs on meanwhile
        (its ring stays full), so playing resumes with the same model, loop and mapping.
        Called from the daemon's device thread, never the main thread, in case PortAudio blocks.
        """
        from ravemap.audio import stream

        old = self.output
        assert isinstance(old, stream.AudioOutput) and self.engine is not None
        if old not in self.abandoned:
            self.abandoned.append(old)
        try:
            self._open_again(old)
        except DeviceError:
            # PortAudio's JACK client died with the server: start PortAudio afresh (this may block
            # on the abandoned stream, in this thread only) and try once more.
            stream.rescan()
            self._open_again(old)

    def _open_again(self, old: AudioOutput) -> None:
        from ravemap.audio import stream

        assert self.engine is not None
        dev = stream.resolve_device(self.config.audio.device, "output")
        input_dev = None
        if old.input_ring is not None:
            input_dev = stream.resolve_device(self.config.audio.input_device, "input")
        new = stream.AudioOutput(self.engine.ring, dev, old.samplerate, self.config.audio.latency,
                                 input_ring=old.input_ring, input_device=input_dev)
        new.xruns = old.xruns
        new.start()
        self.output = new

    def swap_model(self, path: Path) -> BlockProcessor:
        """Load `path` and play it from the next block; on any error the old model plays on."""
        with self._swap_lock, self._preparing(path.name):
            new = self._swap_model(path)
            self._retire()
            return new

    def _swap_model(self, path: Path) -> BlockProcessor:
        current = self.newest
        live_input = isinstance(current.loop, LiveInput)
        key = _model_key(path, live_input)
        choice: LatencyChoice | None = None
        delay: int | None = None
        if key is not None and key in self._measured:
            choice, delay = self._measured[key]
            log.info("%s played before: its latency (%s, lead %.1f ms) and model delay (%d samples) are "
                     "reused, not measured again", path.name, choice.describe(),
                     1000 * (choice.lead_s or 0.0), delay)
        if isinstance(current.loop, LiveInput):
            old = current.loop
            model = load_model(path)
            live = LiveInput(old.ring, old.device_sr, model.info.sr, model.info.in_channels,
                             name=old.path.name.strip("<>"))
            new = prepare_processor(self.config, self.controls, model=model, live=live, choice=choice,
                                    delay=delay)
        else:
            new = prepare_processor(self.config, self.controls, model_path=path,
                                    loop_path=current.loop.path, choice=choice, delay=delay)
        self._remember(new)
        self._hand_over(new)
        log.info("now playing model %s", new.model.info.describe())
        return new

    def swap_loop(self, path: Path) -> BlockProcessor:
        """Load `path` as the loop for the current model; on any error the old loop plays on."""
        with self._swap_lock, self._preparing(path.name):
            current = self.newest
            if not current.loop.seekable:
                raise ConfigError("the source is live input (engine.source: input); there is no loop to swap")
            # Same model, same cost per block: the latency chosen for it holds.
            new = prepare_processor(self.config, self.controls, model=current.model, loop_path=path,
                                    warm_up=False, choice=current.latency)
            self._hand_over(new)
            self._retire()
            log.info("now playing loop %s (%.2f s)", path, new.loop.seconds)
            return new

    def reencode(self) -> BlockProcessor | None:
        """Encode the cached loop again at the controls' input gain (after a change); None if nothing to do."""
        with self._swap_lock:
            current = self.newest
            if current.latents is None or current.encoded_gain_db == self.controls.input_gain_db:
                return None
            new = prepare_processor(self.config, self.controls, model=current.model, loop_path=current.loop.path,
                                    warm_up=False, choice=current.latency)
            self._hand_over(new)
            self._retire()
            log.info("loop encoded again at input gain %.1f dB", new.encoded_gain_db)
            return new

    def chain_status(self) -> dict:
        """The performer's chain of what plays from the next block: model delay, limiter, mix, jitter, scale."""
        return self.newest.chain_status()

    @contextmanager
    def _preparing(self, name: str) -> Iterator[None]:
        """Raise the playing engine's lead to `PREPARE_LEAD_S` while `name` is prepared, back after.

        `torch.jit.load` holds the GIL for the whole load (about 20 ms for the default model, 90-250 ms for a
        126 MB export on the 2-core test machine), and no Python thread runs meanwhile: the engine renders
        nothing, so the ring must hold more than the stall before the load starts."""
        engine = self.engine
        if engine is None or PREPARE_LEAD_S <= 0 or isinstance(self.newest.loop, LiveInput):
            yield  # live input cannot be rendered ahead of its capture
            return
        engine.hold_lead(PREPARE_LEAD_S)
        ready = engine.wait_for_lead(PREPARE_WAIT_S)
        log.info("preparing %s: lead raised to %d frames (%.0f ms) while it loads%s; back to the chosen lead once "
                 "it plays", name, engine.target_fill, 1000 * engine.target_fill / engine.out_sr,
                 "" if ready else " (not filled yet: the machine is busy)")
        try:
            yield
        finally:
            engine.hold_lead(None)

    def _retire(self) -> None:
        """Free the processor the engine replaced here, on the caller's thread: letting go of a model takes
        15-45 ms (its TorchScript graphs), with the GIL held; the engine thread must not pay it."""
        engine, new = self.engine, self._newest
        if engine is not None and new is not None and engine.wait_for_swap(new, PREPARE_WAIT_S):
            engine.retired = None

    def _remember(self, processor: BlockProcessor) -> None:
        """Keep what was measured for this model file (its latency choice and delay), for a swap back to it."""
        key = _model_key(processor.model.info.path, isinstance(processor.loop, LiveInput))
        if key is not None:
            self._measured[key] = (processor.latency, processor.model_delay)

    def _hand_over(self, new: BlockProcessor) -> None:
        if self.engine is None:
            self._processor = new
        else:
            self.engine.swap(new)
            self._newest = new
            self._processor, self._model = new, new.model  # the first model is not kept once replaced

    def underruns(self) -> int:
        return self.engine.ring.underruns if self.engine is not None else 0

    def status(self) -> dict[str, object]:
        """The engine's fields of `/ravemap/status` (`ENGINE_OFF` until the engine starts). Any thread:
        it reads attributes the engine replaces whole."""
        engine = self.engine
        if engine is None:
            return dict(ENGINE_OFF)
        playing = self.newest
        processor = engine.processor
        return {
            "model": playing.model.info.path.name,
            "loop": str(playing.loop.path.name),
            "underruns": engine.ring.underruns,
            "block_size": processor.block,
            "lead_frames": engine.target_fill,
            "lead_raises": engine.lead_raises,
            "lead_lowerings": engine.lead_lowerings,
            "period_frames": engine.period,
            "latency_ms": round(engine.latency_ms, 2),
            "latency_choice": processor.latency.describe(),
            "engine_priority": engine.priority,
            "live_realignments": getattr(processor.loop, "realignments", 0),
            "nonfinite_silenced": processor.safety.nonfinite_samples,
            "clipped": processor.safety.clipped_samples,
        }

    def status_line(self) -> str:
        engine = self.engine
        if engine is None:
            return "not started"
        proc = engine.processor
        xruns = getattr(self.output, "xruns", 0)
        if isinstance(proc.loop, LiveInput):
            xruns = f"{xruns}, live re-alignments {proc.loop.realignments}"
        stats = engine.stats
        mean_ms = 1000 * stats.total_block_s / max(1, stats.blocks)
        return (
            f"blocks {stats.blocks}, underruns {engine.ring.underruns}, xruns {xruns}, "
            f"block time mean {mean_ms:.1f} ms / worst {1000 * stats.worst_block_s:.1f} ms "
            f"(budget {1000 * engine.block_seconds:.1f} ms), non-finite samples silenced "
            f"{proc.safety.nonfinite_samples}, clipped {proc.safety.clipped_samples}, "
            f"block errors {stats.errors}; {engine.describe_latency()}, engine priority {engine.priority}"
        )


def _model_key(path: Path, live: bool) -> tuple | None:
    """A model file as it is now (a file rewritten in place is another model), and whether it plays live
    input (timed with per-block encoding) or a loop; None if the file cannot be read."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, live


def _is_none(device: str | int) -> bool:
    return isinstance(device, str) and device.strip().lower() == "none"
