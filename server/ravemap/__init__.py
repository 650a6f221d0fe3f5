"""ravemap: a headless network audio server for RAVE models, steered by OSC and MIDI.

The public Python API is `ravemap.Ravemap` (see `ravemap.api`); it is imported on first use, so
that the command line's light commands do not pay for torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Ravemap"]


def __getattr__(name: str) -> Any:
    if name == "Ravemap":
        from ravemap.api import Ravemap

        return Ravemap
    raise AttributeError(f"module 'ravemap' has no attribute {name!r}")
