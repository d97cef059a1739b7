"""Safety guards on every actuation: a platform policy as data, enforced inside the broker."""

from opensdv.vehicle.safety.audit import AuditRecord, AuditTrail
from opensdv.vehicle.safety.guard import ActuationGuard, SafetyDenied
from opensdv.vehicle.safety.policy import SafetyPolicy, load_policy, shipped_policy_file

__all__ = [
    "ActuationGuard",
    "AuditRecord",
    "AuditTrail",
    "SafetyDenied",
    "SafetyPolicy",
    "load_policy",
    "shipped_policy_file",
]
