"""A deterministic, learnable, tiny image dataset for tests and smoke runs (no files needed).

Each class is a fixed random prototype image; samples are the prototype plus noise, so a small
model separates the classes in one epoch while quantization and pruning still have work to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


from tinyml_exp.data.base import Dataset
from tinyml_exp.registry import register_option


@register_option("dataset", "synthetic")
@register_option("dataset", "synthetic_*")  # synthetic_<architecture>: that model's input shape
@dataclass
class SyntheticDataset(Dataset):
    image_shape: list[int] = field(default_factory=lambda: [28, 28])
    num_train: int = 2000
    num_test: int = 500
    noise: float = 0.5  # standard deviation of the per-pixel noise, in [0, 1] pixel units
    data_seed: int = 1234  # fixed apart from the run seed, so every run sees the same data

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        rng = np.random.default_rng(self.data_seed)
        num_classes = len(self.class_names)
        shape = tuple(self.image_shape)
        prototypes = rng.random((num_classes, *shape))

        def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
            labels = np.arange(n) % num_classes
            rng.shuffle(labels)
            images = prototypes[labels] + rng.normal(0.0, self.noise, (n, *shape))
            return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8), labels.astype(np.uint8)

        x_train, y_train = draw(self.num_train)
        x_test, y_test = draw(self.num_test)
        return x_train, y_train, x_test, y_test
