"""The safety guard's only source of the vehicle's state is the brand adapter's feeder; here the
feeder is attacked from the bus: a speed that its redundant measurement contradicts, and
standard-component frames that were corrupted, replayed or forged (AUTOSAR E2E)."""

from __future__ import annotations

import can
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.model.vss import load_default_vss
from opensdv.vehicle.can import Adapter, Feeder, load_mapping
from opensdv.vehicle.can._e2e import E2EProfile1

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
REAR = ["Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed", "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed"]


def test_a_speed_the_wheels_contradict_is_not_reported() -> None:
    adapter = Adapter(load_mapping("nissan-leaf-2018"), load_default_vss())
    feeder = Feeder(adapter, clock=lambda: 0.0)

    def feed(front: float, rear: float, at: float) -> dict[str, object]:
        got: dict[str, object] = {}
        for frame in adapter.encode_signals(dict.fromkeys(REAR, rear)) + adapter.encode_signals({SPEED: front}):
            frame.timestamp = at
            got |= feeder.process(frame)
        return got

    assert feed(50.0, 50.5, at=1.0)[SPEED] == 50.0  # the rear wheels agree
    assert SPEED not in feed(0.0, 50.0, at=2.0)  # "standing still" on the front while the rear turn
    assert feeder.stats.dropped["cross-check"] == 1 and "disagrees with 50" in feeder.stats.last_drop["cross-check"]
    # without a recent redundant measurement the speed is not confirmed either
    late = adapter.encode_signals({SPEED: 30.0})[0]
    late.timestamp = 5.0
    assert SPEED not in feeder.process(late) and "not all seen" in feeder.stats.last_drop["cross-check"]


def test_the_e2e_crc_is_crc8_sae_j1850() -> None:
    from crc import Calculator, Crc8

    assert Calculator(Crc8.SAEJ1850.value).checksum(b"123456789") == 0x4B  # the catalogued check value
    protection = E2EProfile1("T", data_id=0x0510, crc_byte=7, counter_bit=52)
    frame = protection.protect(bytes(8))
    assert frame[6] >> 4 == 0 and frame[7] == protection.crc(frame)  # counter 0 in the nibble, CRC in byte 7


def _pack_frames(adapter: Adapter, count: int) -> list[can.Message]:
    return [adapter.encode_signals({SOC: 50.0 + n})[0] for n in range(count)]


def test_corrupted_replayed_and_out_of_sequence_frames_are_dropped() -> None:
    adapter = Adapter(load_mapping("nissan-leaf-2018"), load_default_vss())
    feeder = Feeder(adapter)
    first, second, third, _, fifth, sixth = _pack_frames(adapter, 6)
    assert feeder.process(first)[SOC] == 50.0
    tampered = bytearray(second.data)
    tampered[4] ^= 0x01  # one bit of the state of charge flipped on the way
    assert feeder.process(can.Message(arbitration_id=second.arbitration_id, data=bytes(tampered), is_extended_id=False)) == {}
    assert feeder.stats.dropped["e2e-crc"] == 1
    assert feeder.process(second)[SOC] == 51.0
    assert feeder.process(second) == {} and feeder.stats.dropped["e2e-repeated"] == 1  # the same frame again
    assert feeder.process(sixth) == {} and feeder.stats.dropped["e2e-sequence"] == 1  # three frames missing
    assert SOC not in feeder.process(third)  # ... and the old ones replayed after it are out of sequence too
    forged = bytearray(fifth.data)
    forged[7] = 0  # a frame from someone without the Data ID cannot carry the right CRC but by chance
    assert feeder.process(can.Message(arbitration_id=fifth.arbitration_id, data=bytes(forged), is_extended_id=False)) == {}


@settings(max_examples=300)
@given(index=st.integers(0, 7), change=st.integers(1, 255))
def test_fuzz_any_change_within_one_byte_is_detected(index: int, change: int) -> None:
    protection = E2EProfile1("T", data_id=0x0510, crc_byte=7, counter_bit=52)
    sender = E2EProfile1("T", data_id=0x0510, crc_byte=7, counter_bit=52)
    frame = bytearray(sender.protect(bytes([1, 2, 3, 4, 5, 6, 0, 0])))
    frame[index] ^= change
    assert protection.check(bytes(frame)) is not None


def test_the_running_twin_sends_protected_frames_the_feeder_accepts() -> None:
    adapter = Adapter(load_mapping("honda-e-advance-2020"), load_default_vss())
    feeder = Feeder(adapter)
    for frame in _pack_frames(adapter, 40):  # more than one counter cycle (0..14)
        assert SOC in feeder.process(frame)
    assert not any(reason.startswith("e2e") for reason in feeder.stats.dropped)


def test_honda_frames_carry_the_checksum_and_counter_opendbc_computes() -> None:
    """Against opendbc's own packer, byte for byte; then a corrupted or repeated CAR_SPEED is dropped."""
    from dataclasses import replace

    from opendbc.can.packer import CANPacker

    adapter = Adapter(load_mapping("honda-e-advance-2020"), load_default_vss())
    packer = CANPacker("honda_e_advance_2020_can_generated")
    message = adapter.messages["CAR_SPEED"]
    sender = replace(adapter.protections["CAR_SPEED"])
    for counter in range(6):
        _, reference, _ = packer.make_can_msg("CAR_SPEED", 0, {"CAR_SPEED": 50, "COUNTER": counter % 4})
        ours = sender.protect(message.encode({**{s.name: 0 for s in message.signals}, "CAR_SPEED": 50}))
        assert ours == bytes(reference)
    feeder = Feeder(adapter)
    wheels = adapter.encode_signals(dict.fromkeys([*REAR, *(p.replace("Row2", "Row1") for p in REAR)], 50.0))
    speed = adapter.encode_signals({SPEED: 50.0})[0]
    for frame in wheels:
        feeder.process(frame)
    corrupted = bytearray(speed.data)
    corrupted[1] ^= 0x40
    assert feeder.process(can.Message(arbitration_id=speed.arbitration_id, data=bytes(corrupted), is_extended_id=False)) == {}
    assert feeder.stats.dropped["checksum"] == 1
    assert feeder.process(speed)[SPEED] == 50.0
    assert feeder.process(speed) == {} and feeder.stats.dropped["e2e-repeated"] == 1  # its counter did not move
