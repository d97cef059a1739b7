"""The root of every exception OpenSDV raises on purpose.

Each part defines its own subclasses (``CatalogError`` in the model, ``StorageError`` in storage,
...). The CLI catches ``OpenSDVError`` and prints its message instead of a traceback, so every
message must say what was wrong and where (file, field, value).
"""


class OpenSDVError(Exception):
    """Something the user can fix: bad input, a bad configuration, an unreachable service."""
