"""The part of the VSS vehicle model the seat-adjuster uses, as Velocitas's model generator writes it."""

from velocitas_sdk.model import DataPointFloat, DataPointUint16, Model


class DriverSide(Model):
    def __init__(self, name, parent):
        super().__init__(parent)
        self.name = name
        self.Position = DataPointUint16("Position", self)


class Row1(Model):
    def __init__(self, name, parent):
        super().__init__(parent)
        self.name = name
        self.DriverSide = DriverSide("DriverSide", self)


class Seat(Model):
    def __init__(self, name, parent):
        super().__init__(parent)
        self.name = name
        self.Row1 = Row1("Row1", self)


class Cabin(Model):
    def __init__(self, name, parent):
        super().__init__(parent)
        self.name = name
        self.Seat = Seat("Seat", self)


class Vehicle(Model):
    def __init__(self, name):
        super().__init__()
        self.name = name
        self.Speed = DataPointFloat("Speed", self)
        self.Cabin = Cabin("Cabin", self)


vehicle = Vehicle("Vehicle")
