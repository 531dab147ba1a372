"""Where the project's data directories are: `conf/` (the Hydra config) and `firmware/` (the C
sources the firmware stage builds).

A wheel carries them inside the package (`tinyml_exp/conf`, `tinyml_exp/firmware`, copied there by
setup.py's build step); a checkout (editable install, PYTHONPATH) keeps them at the top of the
repository, where they are edited. One function finds either, so every face, the firmware build
and the tests read the same directory. A leaf module: it imports nothing of the package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

NAMES = ("conf", "firmware")


def resource_dir(name: str) -> Path:
    """The directory `name` (one of NAMES): the installed package's copy, else the checkout's."""
    if name not in NAMES:
        raise ValueError(f"unknown resource {name!r}: one of {', '.join(NAMES)}")
    packaged = Path(str(files("tinyml_exp") / name))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"tinyml_exp's {name}/ is neither in the package ({packaged}) nor in a checkout ({checkout}): "
        "reinstall the package (pip install tinyml_exp) or run from the repository"
    )
