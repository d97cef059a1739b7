"""What a vehicle definition says about the car, as VSS attributes a broker serves from start-up."""

from __future__ import annotations

from typing import Any

from opensdv.model.vehicles import Vehicle

__all__ = ["vehicle_attributes"]

_DRIVE = {
    ("front",): "FORWARD_WHEEL_DRIVE",
    ("rear",): "REAR_WHEEL_DRIVE",
    ("front", "rear"): "ALL_WHEEL_DRIVE",
}


def vehicle_attributes(vehicle: Vehicle, vin: str) -> dict[str, Any]:
    """VSS 6.0 attribute values for ``vehicle`` (identity, pack, motor, drive line)."""
    d = vehicle.definition
    pack = vehicle.pack
    positions = tuple(sorted(axle.position for axle in vehicle.eaxles))
    return {
        "Vehicle.VehicleIdentification.VIN": vin,
        "Vehicle.VehicleIdentification.WMI": vin[:3],
        "Vehicle.VehicleIdentification.Brand": d.brand,
        "Vehicle.VehicleIdentification.Model": d.model,
        "Vehicle.VehicleIdentification.Year": d.model_year,
        "Vehicle.VehicleIdentification.BodyType": d.body_type,
        "Vehicle.CurbWeight": round(d.curb_mass_kg),
        "Vehicle.Powertrain.Type": "ELECTRIC",
        "Vehicle.Powertrain.Transmission.DriveType": _DRIVE.get(positions, "UNKNOWN"),
        "Vehicle.Powertrain.TractionBattery.GrossCapacity": round(pack.energy_kwh),
        "Vehicle.Powertrain.TractionBattery.NominalVoltage": round(pack.nominal_voltage_v),
        "Vehicle.Powertrain.TractionBattery.MaxVoltage": round(pack.max_voltage_v),
        "Vehicle.Powertrain.ElectricMotor.MaxPower": round(sum(a.peak_power_kw for a in vehicle.eaxles)),
        "Vehicle.Powertrain.ElectricMotor.MaxTorque": round(sum(a.peak_torque_nm for a in vehicle.eaxles)),
    }
