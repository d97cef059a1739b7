"""The ingest stores a message only under the VIN of the topic it came on (the topic the broker
lets only that car publish to), and nothing from a revoked car."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Sample, TelemetryBatch, VehicleEvent, encode, topic
from opensdv.link.memory import MemoryBroker

VINS = ["JN1NSSAN0DD000001", "JHMHNDAE0ED000002", "JA3MTSUB0SH000003"]


@given(
    sender=st.sampled_from(VINS),
    claimed=st.lists(st.sampled_from(VINS), min_size=1, max_size=4),
    revoked=st.sets(st.sampled_from(VINS), max_size=1),
)
def test_fuzz_a_message_is_stored_only_under_its_senders_vin(sender: str, claimed: list[str], revoked: set[str]) -> None:
    store = TelemetryStore()
    ingest = Ingest(MemoryBroker(), store, write_in_thread=False, revoked=lambda: frozenset(revoked))
    batches = [TelemetryBatch(vin=vin, seq=n, samples=[Sample(path="Vehicle.Speed", value=1.0, ts=1.0)]) for n, vin in enumerate(claimed)]
    bundle = b"[" + b",".join(encode(b) for b in batches) + b"]"
    ingest.handle(topic(sender, "telemetry"), bundle)
    ingest.handle(topic(sender, "events"), encode(VehicleEvent(vin=claimed[0], kind="dtc", at=1.0)))
    ingest.flush()
    honest = all(vin == sender for vin in claimed) and sender not in revoked
    assert store.count() == (len(claimed) if honest else 0)
    for vin in VINS:
        assert store.sequences(vin) == (list(range(len(claimed))) if honest and vin == sender else [])
    if sender in revoked:
        assert ingest.dropped["revoked"] == 2
    store.close()
