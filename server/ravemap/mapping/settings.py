"""How a mapping is trained: the regressor settings, and their limits, in one place.

`config.yaml`'s `mapping` section (the settings a new mapping starts with) and every mapping
file's `regressor.settings` use the field types below, so a value one refuses the other
refuses too, with the same message (`ravemap.validation.explain`). `RegressorSettings` is the
pydantic model a mapping holds; it imports no numpy and no torch.

Threads: any; settings are immutable.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from ravemap.validation import Number, Whole, explain

Kind = Literal["mlp", "linear", "knn"]
KINDS: tuple[str, ...] = get_args(Kind)
Hidden = Annotated[tuple[Annotated[Whole, Field(ge=1, le=1024)], ...], Field(min_length=1, max_length=8)]
Epochs = Annotated[Whole, Field(ge=1, le=1_000_000)]
LearningRate = Annotated[Number, Field(gt=0, le=10)]
Seed = Annotated[Whole, Field(ge=0, le=2**63 - 1)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RegressorSettings:
    """How to train. Checked on construction, `dataclasses.replace` included (pydantic's
    ValidationError, a ValueError); `from_dict` says what is wrong in `explain`'s words.

    `validation_fraction` of the examples (seeded) is held out while there are at least
    `min_validation_examples`; see `regressor.fit` for how held-out examples still end up in the
    mapping. `patience` 0 turns early stopping off.
    """

    kind: Kind = "mlp"
    hidden: Hidden = (32,)
    epochs: Epochs = 2000
    learning_rate: LearningRate = 0.01
    seed: Seed = 0
    validation_fraction: Annotated[Number, Field(ge=0, le=0.9)] = 0.2
    min_validation_examples: Annotated[Whole, Field(ge=2, le=1_000_000_000)] = 10
    patience: Annotated[Whole, Field(ge=0, le=1_000_000)] = 200
    min_delta: Annotated[Number, Field(ge=0, le=1)] = 1e-6
    knn_k: Annotated[Whole, Field(ge=1, le=1024)] = 4
    knn_power: Annotated[Number, Field(gt=0, le=16)] = 2.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> RegressorSettings:
        """Settings from `to_dict`'s output; missing keys take their defaults, unknown keys are refused."""
        try:
            return _ADAPTER.validate_python(d)
        except ValidationError as err:
            raise ValueError(explain(err.errors(), "regressor settings", cls)) from None


# Seconds a trainer process may answer nothing before it is replaced (`mapping.trainer_stall_s`).
TRAINER_STALL_S = 10.0

_ADAPTER = TypeAdapter(RegressorSettings)
DEFAULT = RegressorSettings()
