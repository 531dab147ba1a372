"""Packaging step setup.cfg cannot say: ship the top-level conf/ and firmware/ inside the package.

They stay at the top of the repository, where they are edited and where a checkout (editable
install, PYTHONPATH) reads them; the build copies them into the built package as
`tinyml_exp/conf` and `tinyml_exp/firmware`, where `tinyml_exp.resources.resource_dir` finds them
in an installed wheel. MANIFEST.in puts them in the sdist, so a wheel built from it has them too.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_DIRS = ("conf", "firmware")
# Build products and editor droppings never ship.
IGNORE = shutil.ignore_patterns("build", "__pycache__", "*.o", "*.elf", "*.bin", "*.map", "*~")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        for name in DATA_DIRS:
            source, dest = ROOT / name, Path(self.build_lib) / "tinyml_exp" / name
            if not source.is_dir():
                raise SystemExit(f"setup.py: {source} is missing; build from a checkout or an sdist")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(source, dest, ignore=IGNORE)


setup(cmdclass={"build_py": BuildWithData})
