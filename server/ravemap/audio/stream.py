"""Sound card output through PortAudio (python-sounddevice): the only module that imports it.

The callback contract, as sounddevice's own documentation gives it: the callback runs on
PortAudio's realtime thread; it must not allocate sample buffers, touch the file system,
log, or block. Ours copies prepared frames from the engine's `FrameRing` (silence and an
underrun count when the engine is late), counts PortAudio's own xrun flags, and returns. Its
first call alone also asks the OS for a raised priority for its thread (one system call that
never blocks; see server/ravemap/audio/realtime.py).
It catches everything, because an exception would silence the stream for good.

Threads: `AudioOutput.start/stop` run on the daemon's main thread; `_callback` on the
PortAudio thread.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ravemap.audio.realtime import raise_thread_priority
from ravemap.audio.ring import FrameRing
from ravemap.errors import DeviceError


def _sounddevice():
    try:
        import sounddevice
    except OSError as err:  # PortAudio itself is missing
        raise DeviceError(
            f"PortAudio is not installed ({err}); on Debian/Ubuntu: apt-get install libportaudio2, "
            "or run with --audio none"
        ) from err
    return sounddevice


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float


def rescan() -> None:
    """Make PortAudio look for devices again (after a sound server came back, say).

    PortAudio's terminate closes every open stream first; with a stream whose JACK server has
    gone that blocks for good, so call this only from a thread that may hang (the daemon's
    device-retry thread).
    """
    sd = _sounddevice()
    sd._terminate()
    sd._initialize()


def list_devices() -> list[DeviceInfo]:
    sd = _sounddevice()
    apis = sd.query_hostapis()
    return [
        DeviceInfo(
            index=i,
            name=d["name"],
            hostapi=apis[d["hostapi"]]["name"],
            max_input_channels=d["max_input_channels"],
            max_output_channels=d["max_output_channels"],
            default_samplerate=d["default_samplerate"],
        )
        for i, d in enumerate(sd.query_devices())
    ]


HOW_TO_CHOOSE = "run `ravemap devices` to list them and set audio.device (or --audio NAME|INDEX), or --audio none"


def resolve_device(spec: str | int, kind: str = "output") -> DeviceInfo:
    """Find a device by index, by (part of) its name, or the system default."""
    devices = list_devices()
    key = "max_output_channels" if kind == "output" else "max_input_channels"
    usable = [d for d in devices if getattr(d, key) > 0]
    if not usable:
        raise DeviceError(f"no audio {kind} device found; {HOW_TO_CHOOSE}")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        index = int(spec)
        for d in usable:
            if d.index == index:
                return d
        raise DeviceError(f"audio {kind} device {index} does not exist or has no {kind} channels; {HOW_TO_CHOOSE}")
    if spec in ("default", ""):
        sd = _sounddevice()
        default = sd.default.device[0 if kind == "input" else 1]
        for d in usable:
            if d.index == default:
                return d
        return usable[0]
    wanted = spec.lower()
    exact = [d for d in usable if d.name.lower() == wanted]
    partial = [d for d in usable if wanted in d.name.lower() or wanted in f"{d.name} ({d.hostapi})".lower()]
    matches = exact or partial
    if not matches:
        names = ", ".join(f"{d.index}: {d.name}" for d in usable)
        raise DeviceError(f"no audio {kind} device matches {spec!r} (have {names}); {HOW_TO_CHOOSE}")
    return matches[0]


def pick_samplerate(device: DeviceInfo, wanted: int | None, model_sr: int, channels: int) -> int:
    """The model's rate when the device takes it, else the device's default."""
    sd = _sounddevice()
    for rate in ([wanted] if wanted else [model_sr, int(device.default_samplerate)]):
        try:
            sd.check_output_settings(device=device.index, samplerate=rate, channels=channels)
            return int(rate)
        except Exception:  # PortAudio says no with a PortAudioError or ValueError
            continue
    raise DeviceError(
        f"audio device {device.name!r} takes none of the rates {wanted or model_sr} Hz with "
        f"{channels} channels; set audio.samplerate and audio.channels"
    )


def period_hint(device: DeviceInfo, samplerate: int) -> int:
    """Frames per callback to expect before the first one: half the device's low output latency
    (drivers keep about two periods queued), a power of two, at least 64."""
    sd = _sounddevice()
    try:
        seconds = float(sd.query_devices(device.index)["default_low_output_latency"])
    except Exception:  # an odd host API: the callback will tell
        seconds = 0.0
    frames = max(64, int(seconds * samplerate / 2))
    return 1 << (frames - 1).bit_length()


class AudioOutput:
    """A PortAudio stream that plays what the engine put in the ring.

    With `input_ring` (and `input_device`) it is a duplex stream: the same callback also
    pushes the captured input into `input_ring` for the engine's live source.
    """

    def __init__(self, ring: FrameRing, device: DeviceInfo, samplerate: int, latency: Any = "high",
                 input_ring: FrameRing | None = None, input_device: DeviceInfo | None = None):
        self.ring = ring
        self.device = device
        self.samplerate = samplerate
        self.latency = latency
        self.input_ring = input_ring
        self.input_device = input_device
        self.xruns = 0  # PortAudio's own output-underflow flags
        self.callback_errors = 0
        self.callbacks = 0
        self.priority = "not started"  # of the thread PortAudio calls the callback on
        self._stream = None

    def _callback(self, outdata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        try:
            if self.callbacks == 0:
                # Once, on the first call: the thread PortAudio calls us on is the sound server's
                # client thread, at the OS's normal priority unless the server runs realtime.
                self.priority = raise_thread_priority()
            self.callbacks += 1
            if status.output_underflow:
                self.xruns += 1
            self.ring.fill(outdata)
        except Exception:
            self.callback_errors += 1
            outdata.fill(0.0)

    def _duplex_callback(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time: Any,
                         status: Any) -> None:
        try:
            if status.input_overflow:
                self.xruns += 1
            self.input_ring.push(indata)  # type: ignore[union-attr]
        except Exception:
            self.callback_errors += 1
        self._callback(outdata, frames, time, status)

    def start(self) -> None:
        sd = _sounddevice()
        try:
            stream: Any
            if self.input_ring is None:
                stream = sd.OutputStream(
                    device=self.device.index, samplerate=self.samplerate, channels=self.ring.channels,
                    dtype="float32", latency=self.latency, callback=self._callback,
                )
            else:
                assert self.input_device is not None
                stream = sd.Stream(
                    device=(self.input_device.index, self.device.index), samplerate=self.samplerate,
                    channels=(self.input_ring.channels, self.ring.channels), dtype="float32",
                    latency=self.latency, callback=self._duplex_callback,
                )
            stream.start()
            self._stream = stream
        except Exception as err:
            self._stream = None
            raise DeviceError(f"cannot open audio device {self.device.name!r}: {err}; {HOW_TO_CHOOSE}") from err

    @property
    def active(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            except Exception:  # a device that went away cannot be stopped; close what is left
                pass
            finally:
                with contextlib.suppress(Exception):
                    stream.close()

    def describe(self) -> str:
        where = f"{self.device.name} ({self.device.hostapi}) at {self.samplerate} Hz"
        if self.input_device is not None:
            where += f", live input from {self.input_device.name}"
        return where
