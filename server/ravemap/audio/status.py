"""The engine's fields of `/ravemap/status` while no engine runs (no torch here: the session reads it).

`Playback.status()` fills the same keys from the running engine; `Session.status()` merges them.
"""

from __future__ import annotations

from types import MappingProxyType

ENGINE_OFF = MappingProxyType({
    "model": None,
    "loop": None,
    "underruns": 0,
    "block_size": None,
    "lead_frames": None,
    "lead_raises": 0,
    "lead_lowerings": 0,
    "period_frames": None,
    "latency_ms": None,
    "latency_choice": None,
    "engine_priority": None,
    "live_realignments": 0,
    "nonfinite_silenced": 0,
    "clipped": 0,
})
