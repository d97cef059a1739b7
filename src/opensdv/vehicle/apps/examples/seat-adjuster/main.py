"""Starts Velocitas's seat-adjuster example as the velocitas-sdk wheel ships it (its main.py and
vapp.py untouched), with this directory's vehicle model in place of the generated one."""

import importlib.util
import pathlib
import runpy
import sys

spec = importlib.util.find_spec("velocitas_examples")
assert spec is not None and spec.submodule_search_locations, "velocitas-sdk is not installed"
example = pathlib.Path(next(iter(spec.submodule_search_locations))) / "seat-adjuster" / "src"
sys.path[:0] = [str(pathlib.Path(__file__).parent), str(example)]
runpy.run_path(str(example / "main.py"), run_name="__main__")
