"""The CAN package's errors (all ``OpenSDVError``: the CLI prints them as one line)."""

from opensdv.errors import OpenSDVError


class CanError(OpenSDVError):
    """The root of the CAN package's errors."""


class CanDatabaseError(CanError):
    """A DBC source is unknown or cannot be parsed (even after the documented fixes)."""


class CanMappingError(CanError):
    """A mapping does not fit its DBCs or the VSS catalog; the message lists every problem."""

    def __init__(self, mapping_id: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"mapping {mapping_id}: " + "; ".join(problems))


class BusSpecError(CanError):
    """A bus or log file cannot be opened."""


class SinkError(CanError):
    """The broker side of a feeder refused the claim or lost the connection."""
