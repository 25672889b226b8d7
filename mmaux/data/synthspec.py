"""What SynthPosts generates (`SynthSpec`: task, seed, sizes, label noise, generator version) and
each task's classes, apart from the generator itself (`mmaux.data.synthposts`), so that the
command line can offer them without importing Pillow or pandas."""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

GENERATOR_VERSION = 2  # the newest generation rules (`synthposts.RULES`); a spec records the version it uses
VERSIONS = (1, 2)  # every generator version whose rules are kept, so old checkpoints' posts regenerate

TASKS: dict[str, list[str]] = {
    "sentiment": ["neutral", "positive", "negative"],
    "sarcasm": ["not_sarcastic", "sarcastic"],
    "relation": ["image_adds_text_repr", "image_adds_text_notrepr",
                 "image_notadds_text_repr", "image_notadds_text_notrepr"],
}


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Posts depend on seed and sizes only; task and noise set the labels."""

    task: str  # one of TASKS
    seed: int = 7  # master seed; each post derives its own stream from (seed, split, index)
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    label_noise: float = 0.0  # share of train labels flipped to another class
    version: int = GENERATOR_VERSION  # generation rules (`synthposts.RULES`); older checkpoints record 1

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {sorted(TASKS)}")
        if not isinstance(self.seed, Integral) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("n_train", "n_val", "n_test"):
            n = getattr(self, name)
            if not isinstance(n, Integral) or n < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise!r}")
        if self.version not in VERSIONS:
            raise ValueError(f"version must be one of {list(VERSIONS)}, got {self.version!r}")

    def size(self, split: str) -> int:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}[split]
