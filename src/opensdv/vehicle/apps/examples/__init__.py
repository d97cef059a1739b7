"""Example apps shipped with OpenSDV; each directory is an app (``app.toml`` + its module)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent

__all__ = ["EXAMPLES"]
