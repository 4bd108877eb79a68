"""What an audit holds fixed while its models vary: the split, and the examples it records.

An audit trains, for every model seed, an original, an oracle and one unlearned model per method
on one split (:mod:`unlearn_pl.audit`): the seeds vary the models (initial weights, training
order), never the data. :func:`check_fixed_split` refuses a configuration whose split changes
with a seed key, naming the key; :class:`AuditPlan` is the split's fingerprint and the examples
whose outputs every model records: the whole forget set, and fixed samples of the retain and
validation sets (for KLOM's collateral-damage distributions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_pl.data.datamodule import SplitName, UnlearningDataModule
from unlearn_pl.utils.describe import content_hash

#: The splits whose per-example outputs are recorded (the forget set whole, the others sampled).
RECORDED_SPLITS: tuple[SplitName, ...] = ("forget", "retain", "val")

#: The splits whose accuracy is recorded (the challenge's final score divides the unlearned
#: models' retain and test accuracy by the oracles').
ACCURACY_SPLITS: tuple[SplitName, ...] = ("retain", "forget", "val", "test")


@dataclass(frozen=True)
class AuditPlan:
    """The fixed split (its fingerprint) and the dataset indices recorded per split.

    Attributes:
        split: the data module's :meth:`~unlearn_pl.data.UnlearningDataModule.split_fingerprint`.
        indices: ``{split: sorted dataset indices}`` for :data:`RECORDED_SPLITS`.
    """

    split: str
    indices: dict[str, list[int]]

    @property
    def key(self) -> str:
        """A hash of the plan: the records of one plan are comparable."""
        return content_hash([self.split, [self.indices[s] for s in RECORDED_SPLITS]])

    @classmethod
    def draw(cls, datamodule: UnlearningDataModule, retain_sample: int, val_sample: int, seed: int = 0) -> AuditPlan:
        """The plan of ``datamodule``'s split: all forget examples, and ``retain_sample`` retain and
        ``val_sample`` validation examples drawn with ``seed`` (all of them if there are fewer).

        Raises:
            ValueError: the split has no forget or no validation examples.
        """
        datamodule.setup("fit")
        rng = np.random.default_rng(seed)
        indices: dict[str, list[int]] = {}
        sizes: dict[SplitName, int | None] = {"forget": None, "retain": retain_sample, "val": val_sample}
        for split, size in sizes.items():
            pool = np.asarray(datamodule.indices(split), dtype=np.int64)
            if len(pool) == 0:
                raise ValueError(
                    f"the split has no {split} examples; an audit records the forget set and samples of the retain "
                    "and validation sets (data: val_fraction > 0)"
                )
            chosen = pool if size is None or size >= len(pool) else rng.choice(pool, size=size, replace=False)
            indices[split] = sorted(int(i) for i in chosen)
        return cls(datamodule.split_fingerprint(), indices)

    def check(self, datamodule: UnlearningDataModule, what: str) -> None:
        """Raise ``ValueError`` unless ``datamodule`` holds this plan's split (``what`` names the run)."""
        if datamodule.split_fingerprint() != self.split:
            raise ValueError(
                f"{what} draws another split than the audit's (fingerprint {datamodule.split_fingerprint()} instead "
                f"of {self.split}): an audit compares models trained on one fixed split, so its methods and seeds "
                "must not change the data settings"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "key": self.key, "indices": self.indices}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditPlan:
        return cls(str(data["split"]), {s: [int(i) for i in data["indices"][s]] for s in RECORDED_SPLITS})


def seed_overrides(seed_keys: Sequence[str], values: Mapping[str, int]) -> list[str]:
    """``--key=value`` arguments setting each seed key to its value."""
    return [f"--{key}={int(values[key])}" for key in seed_keys]


def check_fixed_split(
    split_of: Callable[[dict[str, int]], str], seed_keys: Sequence[str], seeds: Sequence[int]
) -> None:
    """Refuse seed keys that change the split.

    ``split_of({key: value})`` builds the configured run with each seed key set to its value and
    returns its split fingerprint. The split is drawn with the first two seeds; where they differ,
    each key is varied alone to name the culprits.

    Raises:
        ValueError: naming every seed key whose value changes the split.
    """
    first, second = int(seeds[0]), int(seeds[1])
    reference = split_of(dict.fromkeys(seed_keys, first))
    if split_of(dict.fromkeys(seed_keys, second)) == reference:
        return
    culprits = [k for k in seed_keys if split_of({**dict.fromkeys(seed_keys, first), k: second}) != reference]
    named = ", ".join(culprits) if culprits else f"{', '.join(seed_keys)} (together)"
    raise ValueError(
        f"the forget set changes with the seed: {named} = {first} and = {second} draw different splits. An audit "
        "keeps the split fixed while the model seeds vary: leave the data's seed out of seed_keys, or fix the split "
        "(data.init_args.manifest, or an IndexForget forget set)"
    )


__all__ = ["ACCURACY_SPLITS", "RECORDED_SPLITS", "AuditPlan", "check_fixed_split", "seed_overrides"]
