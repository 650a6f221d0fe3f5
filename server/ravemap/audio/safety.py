"""The last stage before a speaker: no NaN, no infinity, nothing outside [-1, 1].

Runs in the engine thread on every prepared block, whatever made it (the model, the dry
loop, a crossfade). Counts what it had to fix so that the daemon can report it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SafetyCounters:
    nonfinite_samples: int = 0
    nonfinite_blocks: int = 0
    clipped_samples: int = 0


def make_safe(block: np.ndarray, counters: SafetyCounters) -> np.ndarray:
    """In place: non-finite samples become silence, everything is limited to [-1, 1]."""
    if block.max() <= 1.0 and block.min() >= -1.0:  # the usual block, in two passes (NaN fails both)
        return block
    finite = np.isfinite(block)
    if not finite.all():
        bad = int(block.size - np.count_nonzero(finite))
        block[~finite] = 0.0
        counters.nonfinite_samples += bad
        counters.nonfinite_blocks += 1
    over = np.count_nonzero(np.abs(block) > 1.0)
    if over:
        counters.clipped_samples += int(over)
        np.clip(block, -1.0, 1.0, out=block)
    return block
