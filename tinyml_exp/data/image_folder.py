"""Images in one sub-folder per class (PNG / JPEG), read with Pillow and resized.

`path/<class>/*.png` with a seeded, per-class split (`test_fraction`), or `path/train/<class>/…` and
`path/test/<class>/…` when those two folders exist. Images are resized to `image_size` (H, W) and
converted to `color` (`grey`: N × H × W, `rgb`: N × H × W × 3), uint8, so they are scaled to [0, 1].
Hidden files (a leading dot) are skipped; any other file that is not an image is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tinyml_exp.data.base import Dataset
from tinyml_exp.errors import DataError
from tinyml_exp.registry import register_option

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
COLORS = {"grey": "L", "rgb": "RGB"}


def read_image(path: Path, size: tuple[int, int], color: str) -> np.ndarray:
    """One image file -> uint8 H × W (grey) or H × W × 3 (rgb); `DataError` if it is not an image."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(COLORS[color]).resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path} is not a readable PNG/JPEG image ({type(e).__name__}: {e})") from e


def class_files(root: Path) -> dict[str, list[Path]]:
    """{class sub-folder name: its image files, sorted}; a non-image file fails naming it."""
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))
        for f in files:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(
                    f"{f} is not an image ({', '.join(IMAGE_SUFFIXES)}): move it out of the class folders"
                )
        classes[folder.name] = files
    return classes


@register_option("dataset", "image_folder")
@dataclass
class ImageFolderDataset(Dataset):
    image_size: list[int] = field(default_factory=lambda: [32, 32])  # H, W after resizing
    color: str = "rgb"  # rgb | grey
    test_fraction: float = 0.2  # per class, when there are no train/ and test/ folders
    split_seed: int = 1234  # the split is fixed apart from the run seed
    class_names: list[str] = field(default_factory=list)  # [] = the sorted class folder names

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.color not in COLORS:
            raise DataError(f"dataset.color={self.color!r} is not one of {', '.join(COLORS)}")
        if self.path is None:
            raise DataError("dataset.path is not set: point it at a folder with one sub-folder per class")
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DataError(f"dataset.path={str(root)!r} is not a directory")
        if (root / "train").is_dir() and (root / "test").is_dir():
            train, test = class_files(root / "train"), class_files(root / "test")
            if sorted(train) != sorted(test):
                raise DataError(f"{root}: train/ has classes {sorted(train)} but test/ has {sorted(test)}")
        else:
            train, test = self._split(class_files(root))
        if len(train) < 2:
            raise DataError(
                f"{root}: found {len(train)} class folder(s) {sorted(train)}; a classifier needs at least 2"
            )
        if not self.class_names:
            self.class_names = sorted(train)
        elif sorted(self.class_names) != sorted(train):
            raise DataError(f"dataset.class_names={self.class_names} but the folders are {sorted(train)}")
        return (*self._load(train, root), *self._load(test, root))

    def _split(self, classes: dict[str, list[Path]]) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
        import numpy as np

        rng = np.random.default_rng(self.split_seed)
        train, test = {}, {}
        for name, files in classes.items():
            order = rng.permutation(len(files))
            n_test = round(len(files) * self.test_fraction)
            test[name] = [files[i] for i in sorted(order[:n_test])]
            train[name] = [files[i] for i in sorted(order[n_test:])]
        return train, test

    def _load(self, classes: dict[str, list[Path]], root: Path) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        size = (int(self.image_size[0]), int(self.image_size[1]))
        images, labels = [], []
        for name, files in classes.items():
            label = self.class_names.index(name)
            for f in files:
                images.append(read_image(f, size, self.color))
                labels.append(label)
        if not images:
            raise DataError(f"{root}: no images in a split; add images or change dataset.test_fraction")
        return np.stack(images), np.array(labels, dtype=np.int64)
