"""OpenSDV: one software-defined-vehicle platform shared by several automakers."""

from opensdv.errors import OpenSDVError

__version__ = "0.1.0"
__all__ = ["OpenSDVError", "__version__"]
