"""Wekinator's model rows: per output, whether examples teach it and whether run mode drives it.

Wekinator shows one row per output with its own record and run buttons
(`/wekinator/control/enableModelRecording` and the like); ravemap keeps the same two switches per
latent output. They belong to the performance, not to the mapping: they are not saved, and a mapping
switch turns every one on again (`reset`).

- Recording: an example keeps the outputs whose recording is on; the others are `None` (taught by
  nothing), and with every one off nothing can be recorded.
- Running: in run mode an output whose running is off, or that no example taught, keeps its
  manual value (the slider) instead of the regressor's prediction.

Threads: the session thread only (a collaborator of `ravemap.session.core`).
"""

from __future__ import annotations

import numpy as np

from ravemap.session.outcomes import CommandError


class OutputRows:
    def __init__(self, n_out: int):
        self.n_out = n_out
        self.record_on = [True] * n_out
        self.run_on = [True] * n_out

    def reset(self) -> None:
        """Every output recording and running again (a new mapping)."""
        self.record_on = [True] * self.n_out
        self.run_on = [True] * self.n_out

    def enable(self, what: str, outputs: tuple[int, ...], on: bool) -> None:
        """Wekinator's enable/disableModelRecording (`what` "recording") and ...Running ("running");
        `outputs` are 0-based here."""
        flags = self.record_on if what == "recording" else self.run_on
        for k in outputs:
            flags[k] = bool(on)

    @property
    def all_running(self) -> bool:
        return all(self.run_on)

    def recorded(self, targets: tuple[float, ...]) -> tuple[float | None, ...]:
        """An example's outputs: the targets of the outputs whose recording is on, None for the others."""
        if not any(self.record_on):
            raise CommandError("recording is off for every output (/wekinator/control/enableModelRecording "
                               "switches it on again); nothing recorded")
        return tuple(t if on else None for t, on in zip(targets, self.record_on, strict=True))

    def keep_manual(self, predicted: np.ndarray, targets: tuple[float, ...], taught: object) -> None:
        """In place: outputs whose running is off, or taught by no example (`taught`, the training
        report's per-output flags), take their manual value."""
        if not isinstance(taught, list) or len(taught) != self.n_out:
            taught = [True] * self.n_out
        for k in range(self.n_out):
            if not (self.run_on[k] and taught[k]):
                predicted[k] = targets[k]
