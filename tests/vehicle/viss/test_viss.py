"""VISS v3 over a real WebSocket and HTTP port: every message type, the filters, the error table,
tokens mapped to the broker's permissions, the safety guard, TLS."""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from opensdv.vehicle.broker import (
    ALLOW_ALL,
    TokenVerifier,
    generate_key_pair,
    mint_token,
    vehicle_source,
    write_dev_pki,
)
from opensdv.vehicle.safety import ActuationGuard, load_policy
from opensdv.vehicle.viss import SUBPROTOCOL
from opensdv.vehicle.viss._protocol import parse_request
from opensdv.vehicle.viss._service import VissError
from tests.vehicle.viss.conftest import RunningViss, start_viss

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEYS = generate_key_pair("ES256")


class Client:
    """A VISS client over one WebSocket: requests answered in order, events kept aside."""

    def __init__(self, connection: ClientConnection) -> None:
        self.ws = connection
        self.events: list[dict[str, Any]] = []
        self.number = 0

    def request(self, **message: Any) -> dict[str, Any]:
        self.number += 1
        message.setdefault("requestId", str(self.number))
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply.get("action") == "subscription":
                self.events.append(reply)
                continue
            assert reply.get("requestId") == message["requestId"], reply
            assert ISO.match(reply["ts"])
            return reply

    def event(self, timeout_s: float = 10) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        reply = json.loads(self.ws.recv(timeout=timeout_s))
        assert reply["action"] == "subscription", reply
        return reply


@pytest.fixture
def client(viss: RunningViss) -> Iterator[Client]:
    with connect(viss.url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == SUBPROTOCOL
        yield Client(ws)


def test_get_one_signal_many_and_what_is_missing(viss: RunningViss, client: Client) -> None:
    viss.call(viss.broker.publish, {SPEED: 42.5, SOC: 80.0}, ALLOW_ALL)
    reply = client.request(action="get", path=SPEED)
    assert reply["action"] == "get" and reply["data"]["path"] == SPEED
    assert reply["data"]["dp"]["value"] == "42.5" and ISO.match(reply["data"]["dp"]["ts"])
    assert client.request(action="get", path="Vehicle/Speed")["data"]["dp"]["value"] == "42.5"  # slashes too
    many = client.request(action="get", path="Vehicle", filter={"variant": "paths", "parameter": ["Speed", "Powertrain.TractionBattery.StateOfCharge.*"]})
    values = {item["path"]: item["dp"]["value"] for item in many["data"]}
    assert values[SPEED] == "42.5" and values[SOC] == "80"
    assert values["Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"] == "viss-inline:Data-not-available"
    missing = client.request(action="get", path=LIMIT)
    assert missing["error"] == {"number": "404", "reason": "unavailable_data", "description": missing["error"]["description"]}
    unknown = client.request(action="get", path="Vehicle.Nope")
    assert unknown["error"]["number"] == "404" and "Vehicle.Nope" in unknown["error"]["description"]


def test_metadata_of_a_subtree(client: Client) -> None:
    reply = client.request(action="get", path="Vehicle.Powertrain.TractionBattery.Charging", filter={"variant": "metadata", "parameter": "2"})
    charging = reply["metadata"]["Charging"]
    assert charging["type"] == "branch"
    limit = charging["children"]["ChargeLimit"]
    assert limit["type"] == "actuator" and limit["datatype"] == "uint8" and limit["unit"] == "percent" and limit["max"] == "100"
    assert "ChargingPort" not in json.dumps(charging["children"].get("ChargeLimit"))  # depth 2: no grandchildren's leaves


def test_set_targets_an_actuator_and_refuses_the_rest(viss: RunningViss, client: Client) -> None:
    assert "error" not in client.request(action="set", path=LIMIT, value="80")
    assert viss.call(viss.broker.get_target, LIMIT, ALLOW_ALL).value == 80
    cases = {
        (SPEED, "10"): ("403", "forbidden_request"),  # a sensor is read-only
        (LIMIT, "eighty"): ("400", "invalid_data"),
        (LIMIT, "150"): ("400", "invalid_data"),  # above the catalog's maximum
        (LIMIT, 80): ("400", "invalid_data"),  # values are strings
        ("Vehicle.Nope", "1"): ("404", "unavailable_data"),
    }
    for (path, value), (number, reason) in cases.items():
        error = client.request(action="set", path=path, value=value)["error"]
        assert (error["number"], error["reason"]) == (number, reason), (path, value, error)
    assert viss.call(viss.broker.get_target, LIMIT, ALLOW_ALL).value == 80


def test_change_filter_sends_only_changes_of_the_trigger(viss: RunningViss, client: Client) -> None:
    viss.call(viss.broker.publish, {SPEED: 10.0, SOC: 50.0}, ALLOW_ALL)
    reply = client.request(action="subscribe", path="Vehicle", filter=[
        {"variant": "paths", "parameter": ["Speed", "Powertrain.TractionBattery.StateOfCharge.Current"]},
        {"variant": "change", "parameter": {"logic-op": "gt", "diff": "5"}},
    ])  # fmt: skip
    subscription = reply["subscriptionId"]
    viss.call(viss.broker.publish, {SPEED: 12.0}, ALLOW_ALL)  # +2 on the previous value: not enough
    viss.call(viss.broker.publish, {SOC: 49.0}, ALLOW_ALL)  # not the trigger
    viss.call(viss.broker.publish, {SPEED: 10.0}, ALLOW_ALL)  # -2
    viss.call(viss.broker.publish, {SPEED: 16.0}, ALLOW_ALL)  # +6
    event = client.event()
    assert event["subscriptionId"] == subscription
    assert {item["path"]: item["dp"]["value"] for item in event["data"]} == {SPEED: "16", SOC: "49"}
    assert client.request(action="unsubscribe", subscriptionId=subscription)["subscriptionId"] == subscription
    viss.wait_until(lambda broker: broker.statistics().subscriptions == 0)
    assert client.request(action="unsubscribe", subscriptionId=subscription)["error"]["number"] == "404"


def test_range_filter_and_boolean_change(viss: RunningViss, client: Client) -> None:
    client.request(action="subscribe", path=SPEED, filter={"variant": "range", "parameter": [
        {"logic-op": "lt", "boundary": "5", "combination-op": "OR"}, {"logic-op": "gt", "boundary": "100"}]})  # fmt: skip
    viss.call(viss.broker.publish, {SPEED: 50.0}, ALLOW_ALL)
    viss.call(viss.broker.publish, {SPEED: 120.0}, ALLOW_ALL)
    assert client.event()["data"]["dp"]["value"] == "120"
    viss.call(viss.broker.publish, {SPEED: 3.0}, ALLOW_ALL)
    assert client.event()["data"]["dp"]["value"] == "3"
    client.request(action="subscribe", path=TRUNK, filter={"variant": "change", "parameter": {"logic-op": "gt", "diff": "0"}})
    viss.call(viss.broker.publish, {TRUNK: False}, ALLOW_ALL)
    viss.call(viss.broker.publish, {TRUNK: True}, ALLOW_ALL)  # false -> true
    opened = client.event()["data"]
    assert opened["path"] == TRUNK and opened["dp"]["value"] == "true"
    viss.call(viss.broker.publish, {TRUNK: False}, ALLOW_ALL)  # true -> false: not "gt 0"
    viss.call(viss.broker.publish, {TRUNK: True}, ALLOW_ALL)
    assert client.event()["data"]["dp"]["value"] == "true"


def test_timebased_sends_every_period(viss: RunningViss, client: Client) -> None:
    viss.call(viss.broker.publish, {SPEED: 7.0}, ALLOW_ALL)
    reply = client.request(action="subscribe", path=SPEED, filter={"variant": "timebased", "parameter": {"period": "20"}})
    events = [client.event() for _ in range(3)]  # no change needed: one every 20 ms
    assert {event["subscriptionId"] for event in events} == {reply["subscriptionId"]}
    assert [event["data"]["dp"]["value"] for event in events] == ["7", "7", "7"]
    assert len({event["ts"] for event in events}) >= 2


def test_curvelog_sends_the_points_the_curve_needs(viss: RunningViss, client: Client) -> None:
    client.request(action="subscribe", path=SPEED, filter={"variant": "curvelog", "parameter": {"maxerr": "0.5", "bufsize": "5"}})
    for _ in range(5):
        viss.call(viss.broker.publish, {SPEED: 30.0}, ALLOW_ALL)  # a flat line: its two ends are enough
    points = client.event()["data"]["dp"]
    assert [p["value"] for p in points] == ["30", "30"] and points[0]["ts"] <= points[1]["ts"]


def test_curve_points_keep_every_sample_within_maxerr() -> None:
    from opensdv.vehicle.broker import Datapoint
    from opensdv.vehicle.viss._service import curve_points

    ramp = [Datapoint(float(i), float(i)) for i in range(10)]
    assert curve_points(ramp, 0.01) == [ramp[0], ramp[-1]]
    step = [Datapoint(0.0 if i < 5 else 10.0, float(i)) for i in range(10)]
    assert [p.timestamp for p in curve_points(step, 0.5)] == [0.0, 4.0, 5.0, 9.0]


@settings(max_examples=200)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=60), st.floats(0, 100))
def test_curve_points_are_within_maxerr_of_every_sample(values: list[float], maxerr: float) -> None:
    from opensdv.vehicle.broker import Datapoint
    from opensdv.vehicle.viss._service import curve_points

    samples = [Datapoint(v, float(t)) for t, v in enumerate(values)]
    kept = curve_points(samples, maxerr)
    assert kept[0] is samples[0] and kept[-1] is samples[-1]
    for sample in samples:
        right = next(p for p in kept if p.timestamp >= sample.timestamp)
        left = [p for p in kept if p.timestamp <= sample.timestamp][-1]
        span = right.timestamp - left.timestamp
        line = left.value if span == 0 else left.value + (right.value - left.value) * (sample.timestamp - left.timestamp) / span
        assert abs(sample.value - line) <= maxerr + 1e-6 * max(1.0, abs(sample.value))


@pytest.mark.parametrize(
    ("message", "number", "reason"),
    [
        ("not json", "400", "bad_request"),
        ({"action": "fly", "path": SPEED}, "400", "bad_request"),
        ({"action": "get", "path": SPEED, "colour": "red"}, "400", "bad_request"),
        ({"action": "subscribe", "path": SPEED}, "400", "bad_request"),
        ({"action": "subscribe", "path": SPEED, "filter": {"variant": "history", "parameter": "P2DT12H"}}, "404", "unavailable_data"),
        ({"action": "subscribe", "path": SPEED, "filter": {"variant": "curvelog", "parameter": {"maxerr": "1", "bufsize": "1"}}}, "400", "bad_request"),
        ({"action": "subscribe", "path": SPEED, "filter": {"variant": "range", "parameter": {"logic-op": "about", "boundary": "1"}}}, "400", "bad_request"),
        ({"action": "subscribe", "path": SPEED, "filter": {"variant": "timebased", "parameter": {"period": "1"}}}, "400", "bad_request"),
        ({"action": "get", "path": SPEED, "filter": {"variant": "timebased", "parameter": {"period": "100"}}}, "400", "bad_request"),
        ({"action": "get", "path": "Vehicle..Speed"}, "400", "bad_request"),
        ({"action": "set", "path": LIMIT}, "400", "bad_request"),
    ],
)
def test_malformed_requests_get_the_spec_error(client: Client, message: Any, number: str, reason: str) -> None:
    client.ws.send(message if isinstance(message, str) else json.dumps(message | {"requestId": "x"}))
    reply = json.loads(client.ws.recv(timeout=10))
    assert (reply["error"]["number"], reply["error"]["reason"]) == (number, reason), reply
    assert reply["error"]["description"]


def test_tokens_scope_every_request_on_both_transports() -> None:
    viss = start_viss(verifier=TokenVerifier([KEYS[1]]))
    try:
        viss.call(viss.broker.publish, {SPEED: 30.0, SOC: 60.0}, ALLOW_ALL)
        reader = mint_token(KEYS[0], f"read:{SPEED}")
        with connect(viss.url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
            client = Client(ws)
            assert client.request(action="get", path=SPEED)["error"]["reason"] == "invalid_token"
            assert client.request(action="get", path=SPEED, authorization=reader)["data"]["dp"]["value"] == "30"
            assert client.request(action="get", path=SOC, authorization=reader)["error"]["number"] == "403"
            assert client.request(action="set", path=LIMIT, value="70", authorization=reader)["error"]["number"] == "403"
            assert client.request(action="get", path=SPEED, authorization="not-a-token")["error"]["number"] == "401"
            expired = mint_token(KEYS[0], f"read:{SPEED}", now=time.time() - 7200)
            assert client.request(action="get", path=SPEED, authorization=expired)["error"]["number"] == "401"
        anonymous = httpx.get(f"{viss.http}/Vehicle/Speed")
        assert anonymous.status_code == 401 and "invalid_token" in anonymous.headers["www-authenticate"]
        read = httpx.get(f"{viss.http}/Vehicle/Speed", headers={"Authorization": f"Bearer {reader}"})
        assert read.status_code == 200 and read.json()["data"]["dp"]["value"] == "30"
        setter = mint_token(KEYS[0], f"actuate:{LIMIT}")
        wrote = httpx.post(f"{viss.http}/Vehicle/Powertrain/TractionBattery/Charging/ChargeLimit",
                           json={"value": "70"}, headers={"Authorization": f"Bearer {setter}"})  # fmt: skip
        assert wrote.status_code == 200 and "ts" in wrote.json()
        assert viss.call(viss.broker.get_target, LIMIT, ALLOW_ALL).value == 70
        bad = httpx.post(f"{viss.http}/Vehicle/Speed", content=b"[1,", headers={"Authorization": f"Bearer {setter}"})
        assert bad.status_code == 400 and bad.json()["error"]["reason"] == "bad_request"
    finally:
        viss.stop()


def test_the_safety_guard_decides_viss_sets() -> None:
    viss = start_viss(guard=ActuationGuard(load_policy(), time.time))
    try:
        with connect(viss.url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
            client = Client(ws)
            viss.call(viss.broker.publish, {SPEED: 0.0}, vehicle_source())
            assert "error" not in client.request(action="set", path=TRUNK, value="true")
            viss.call(viss.broker.publish, {SPEED: 50.0}, vehicle_source())
            refused = client.request(action="set", path=TRUNK, value="true")["error"]
            assert (refused["number"], refused["reason"]) == ("403", "forbidden_request")
    finally:
        viss.stop()


def test_another_sub_protocol_is_turned_away(viss: RunningViss) -> None:
    with pytest.raises(InvalidStatus), connect(viss.url, subprotocols=["VISSv2"]):  # type: ignore[list-item]
        pass


def test_wss_with_the_fleet_ca(tmp_path: Any) -> None:
    pki = write_dev_pki(tmp_path / "pki")
    viss = start_viss(tls=(pki.server_cert, pki.server_key), host="localhost")
    try:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        viss.call(viss.broker.publish, {SPEED: 5.0}, ALLOW_ALL)
        with connect(viss.url, subprotocols=[SUBPROTOCOL], ssl=context) as ws:  # type: ignore[list-item]
            assert Client(ws).request(action="get", path=SPEED)["data"]["dp"]["value"] == "5"
        with pytest.raises(ssl.SSLError), connect(viss.url, subprotocols=[SUBPROTOCOL], ssl=ssl.create_default_context()):  # type: ignore[list-item]
            pass  # a client that does not trust the CA
    finally:
        viss.stop()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["action", "path", "filter", "value", "requestId", "subscriptionId", "authorization", "x"]),
                       json_values | st.sampled_from(["get", "set", "subscribe", "unsubscribe", SPEED]), max_size=6))  # fmt: skip
def test_any_message_parses_or_is_a_viss_error(message: dict[str, Any]) -> None:
    try:
        parse_request(message)
    except VissError as exc:
        assert exc.number in ("400", "404") and exc.description


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(["action", "path", "filter", "value", "requestId", "subscriptionId"]),
                       json_values | st.sampled_from(["get", "set", "subscribe", "unsubscribe", "Vehicle", SPEED, "Vehicle.*.x", "**"])
                       | st.fixed_dictionaries({"variant": st.sampled_from(["paths", "range", "change", "timebased", "metadata"]),
                                                "parameter": json_values}), max_size=6))  # fmt: skip
def test_any_message_gets_a_response_never_an_exception(message: dict[str, Any]) -> None:
    import asyncio

    from opensdv.model.vss import load_default_vss
    from opensdv.vehicle.broker import AllowAll, Broker
    from opensdv.vehicle.viss import VissService

    async def run() -> dict[str, Any]:
        session = VissService(Broker(load_default_vss()), AllowAll(), requires_token=False).session(_ignore)
        try:
            return await session.handle(message)
        finally:
            await session.close()

    reply = asyncio.run(run())
    assert ISO.match(reply["ts"])
    if "error" in reply:
        assert reply["error"]["number"] in ("400", "403", "404", "429", "503") and reply["error"]["description"]


async def _ignore(_: dict[str, Any]) -> None:
    return None


def test_a_binary_frame_gets_an_error_and_the_session_goes_on(client: Client) -> None:
    client.ws.send(b"\x00\xff not text")
    assert json.loads(client.ws.recv(timeout=10))["error"]["reason"] == "bad_request"
    assert client.request(action="get", path="Vehicle.Nope")["error"]["number"] == "404"  # still answering
