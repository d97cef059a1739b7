"""``kuksa.val.v2`` with the raw generated stubs: providers, actuation, metadata, bad input, mTLS."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc

from opensdv.model.vss import load_vss
from opensdv.vehicle.broker import (
    ALLOW_ALL,
    IGNORE_UNKNOWN_HEADER,
    UNKNOWN_PATHS_HEADER,
    TlsConfig,
    generate_key_pair,
    mint_token,
)
from tests.vehicle.broker.conftest import RunningBroker, start_broker
from tests.vehicle.broker.test_core import LIMIT, SOC, SPEED, START_STOP


def stub(handle: RunningBroker) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(handle.target)
    return channel, val_pb2_grpc.VALStub(channel)


@pytest.fixture
def val(running: RunningBroker) -> Iterator[Any]:
    channel, client = stub(running)
    yield client
    channel.close()


def code_of(call: Any, *args: Any, **kwargs: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    return caught.value.code()  # type: ignore[no-any-return]


class RawProvider:
    """A provider written with the raw v2 stubs, as a KUKSA feeder would be."""

    def __init__(self, client: Any) -> None:
        self.requests: queue.Queue[v.OpenProviderStreamRequest | None] = queue.Queue()
        self.responses = client.OpenProviderStream(iter(self.requests.get, None))

    def send(self, **action: Any) -> None:
        self.requests.put(v.OpenProviderStreamRequest(**action))

    def next(self) -> v.OpenProviderStreamResponse:
        return next(self.responses)

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()


def test_provider_claims_and_receives_actuation(running: RunningBroker, val: Any) -> None:
    provider = RawProvider(val)
    provider.send(
        provide_actuation_request=v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=LIMIT)])
    )
    assert provider.next().HasField("provide_actuation_response")
    val.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LIMIT), value=t.Value(uint32=80)))
    request = provider.next().batch_actuate_stream_request.actuate_requests[0]
    assert request.signal_id.path == LIMIT and request.value.uint32 == 80
    # a second provider cannot claim the same actuator
    rival = RawProvider(val)
    rival.send(
        provide_actuation_request=v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=LIMIT)])
    )
    with pytest.raises(grpc.RpcError) as caught:
        rival.next()
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    provider.close()
    running.wait_until(lambda broker: broker.statistics().claimed_actuators == 0)  # the server saw it end
    assert (
        code_of(val.Actuate, v.ActuateRequest(signal_id=t.SignalID(path=LIMIT), value=t.Value(uint32=70)))
        is grpc.StatusCode.UNAVAILABLE
    )


def test_provider_publishes_permissively(running: RunningBroker, val: Any) -> None:
    catalog = running.broker.catalog
    speed_id, soc_id = catalog.leaf(SPEED).id, catalog.leaf(SOC).id
    provider = RawProvider(val)
    provider.send(publish_values_request=v.PublishValuesRequest(request_id=7, data_points={
        speed_id: t.Datapoint(value=t.Value(float=55.5)),
        soc_id: t.Datapoint(value=t.Value(float=150.0)),
        999_999: t.Datapoint(value=t.Value(float=1.0)),
    }))  # fmt: skip
    response = provider.next().publish_values_response
    assert response.request_id == 7 and set(response.status) == {soc_id, 999_999}
    assert response.status[999_999].code == t.ERROR_CODE_NOT_FOUND
    assert "above the maximum" in response.status[soc_id].message
    assert val.GetValue(v.GetValueRequest(signal_id=t.SignalID(id=speed_id))).data_point.value.float == 55.5
    provider.close()


def test_batch_actuate_is_all_or_nothing(running: RunningBroker, val: Any) -> None:
    provider = RawProvider(val)
    provider.send(
        provide_actuation_request=v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=LIMIT)])
    )
    provider.next()
    batch = v.BatchActuateRequest(actuate_requests=[
        v.ActuateRequest(signal_id=t.SignalID(path=LIMIT), value=t.Value(uint32=90)),
        v.ActuateRequest(signal_id=t.SignalID(path=START_STOP), value=t.Value(string="START")),
    ])  # fmt: skip
    assert code_of(val.BatchActuate, batch) is grpc.StatusCode.UNAVAILABLE  # START_STOP has no provider
    val.BatchActuate(v.BatchActuateRequest(actuate_requests=batch.actuate_requests[:1]))
    assert (
        provider.next().batch_actuate_stream_request.actuate_requests[0].value.uint32 == 90
    )  # only the good batch
    provider.close()


def test_values_subscriptions_and_server_info(running: RunningBroker, val: Any) -> None:
    val.PublishValue(
        v.PublishValueRequest(
            signal_id=t.SignalID(path=SPEED), data_point=t.Datapoint(value=t.Value(float=3.0))
        )
    )
    values = val.GetValues(
        v.GetValuesRequest(signal_ids=[t.SignalID(path=SPEED), t.SignalID(path=SOC)])
    ).data_points
    assert values[0].value.float == 3.0 and not values[1].HasField("value")
    stream = val.SubscribeById(v.SubscribeByIdRequest(signal_ids=[running.broker.catalog.leaf(SPEED).id]))
    assert next(stream).entries[running.broker.catalog.leaf(SPEED).id].value.float == 3.0
    stream.cancel()
    info = val.GetServerInfo(v.GetServerInfoRequest())
    assert info.name == "opensdv-databroker" and info.version


def test_subscription_with_unknown_paths_is_opt_in(running: RunningBroker, val: Any) -> None:
    request = v.SubscribeRequest(signal_paths=[SPEED, "Vehicle.Nope"])
    assert code_of(lambda: next(val.Subscribe(request))) is grpc.StatusCode.NOT_FOUND
    stream = val.Subscribe(request, metadata=[(IGNORE_UNKNOWN_HEADER, "true")])
    first = next(stream)
    assert list(first.entries) == [SPEED]
    assert dict(stream.initial_metadata())[UNKNOWN_PATHS_HEADER] == "Vehicle.Nope"
    stream.cancel()


@pytest.mark.parametrize("release", ["4.0", "5.1", "6.0"])
def test_list_metadata_serves_every_leaf_of_official_catalogs(shared: Path, release: str) -> None:
    path = shared / "vss" / f"vss_{release}.json"
    handle = start_broker(load_vss(path))
    try:
        channel, client = stub(handle)
        listed = client.ListMetadata(v.ListMetadataRequest(root="Vehicle")).metadata
        expected = len(load_vss(path))
        assert len(listed) == expected == len({m.path for m in listed})
        soc = next(m for m in listed if m.path == SOC)
        assert soc.data_type == t.DATA_TYPE_FLOAT and soc.unit == "percent" and soc.max.float == 100.0
        channel.close()
    finally:
        handle.stop()


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (v.PublishValueRequest(signal_id=t.SignalID(path=SPEED), data_point=t.Datapoint(value=t.Value(string="x"))), "INVALID_ARGUMENT"),
        (v.PublishValueRequest(signal_id=t.SignalID(path=SPEED), data_point=t.Datapoint(value=t.Value(int32=3))), "INVALID_ARGUMENT"),
        (v.PublishValueRequest(signal_id=t.SignalID(path=LIMIT), data_point=t.Datapoint(value=t.Value(uint32=101))), "INVALID_ARGUMENT"),
        (v.PublishValueRequest(signal_id=t.SignalID(path="Vehicle.Nope"), data_point=t.Datapoint(value=t.Value(float=1))), "NOT_FOUND"),
        (v.PublishValueRequest(signal_id=t.SignalID(path="V" * 1001), data_point=t.Datapoint(value=t.Value(float=1))), "INVALID_ARGUMENT"),
        (v.PublishValueRequest(signal_id=t.SignalID(path=SPEED), data_point=t.Datapoint()), "INVALID_ARGUMENT"),
        (v.PublishValueRequest(signal_id=t.SignalID(id=123_456), data_point=t.Datapoint(value=t.Value(float=1))), "NOT_FOUND"),
    ],
)  # fmt: skip
def test_bad_publishes_get_clear_codes_and_change_nothing(
    running: RunningBroker, val: Any, request_: Any, status: str
) -> None:
    val.PublishValue(
        v.PublishValueRequest(
            signal_id=t.SignalID(path=SPEED), data_point=t.Datapoint(value=t.Value(float=1.5))
        )
    )
    assert code_of(val.PublishValue, request_).name == status
    assert val.GetValue(v.GetValueRequest(signal_id=t.SignalID(path=SPEED))).data_point.value.float == 1.5


def test_bad_requests(val: Any) -> None:
    assert (
        code_of(val.Actuate, v.ActuateRequest(signal_id=t.SignalID(path=SPEED), value=t.Value(float=1))).name
        == "INVALID_ARGUMENT"
    )
    assert code_of(val.ListMetadata, v.ListMetadataRequest(root="Vehicle.Nope")).name == "NOT_FOUND"
    assert code_of(val.GetValues, v.GetValuesRequest()).name == "INVALID_ARGUMENT"
    assert (
        code_of(lambda: next(val.Subscribe(v.SubscribeRequest(signal_paths=[SPEED], buffer_size=5000)))).name
        == "INVALID_ARGUMENT"
    )


def test_flooding_a_slow_subscriber_loses_no_current_value(running: RunningBroker, val: Any) -> None:
    stream = val.Subscribe(v.SubscribeRequest(signal_paths=[SPEED], buffer_size=10))
    next(stream)  # initial value; then never read while 2,000 updates arrive
    for i in range(20):
        running.call(
            lambda i=i: [running.broker.publish({SPEED: float(i * 100 + k)}, ALLOW_ALL) for k in range(100)]
        )
    assert running.call(lambda: running.broker.statistics().dropped_updates) > 0
    assert val.GetValue(v.GetValueRequest(signal_id=t.SignalID(path=SPEED))).data_point.value.float == 1999.0
    stream.cancel()
    assert val.GetServerInfo(v.GetServerInfoRequest()).name  # still serving


def test_authorization_statuses(
    secured: RunningBroker, rsa_keys: tuple[bytes, bytes], ec_keys: tuple[bytes, bytes]
) -> None:
    channel, client = stub(secured)
    request = v.GetValueRequest(signal_id=t.SignalID(path=SPEED))

    def call(token: str | None) -> grpc.StatusCode:
        metadata = [("authorization", f"Bearer {token}")] if token else []
        try:
            client.GetValue(request, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    other_private, _ = generate_key_pair("RS256")
    assert call(None) is grpc.StatusCode.UNAUTHENTICATED
    assert call("not-a-jwt") is grpc.StatusCode.UNAUTHENTICATED
    assert call(mint_token(other_private, "read")) is grpc.StatusCode.UNAUTHENTICATED  # unknown signer
    assert call(mint_token(rsa_keys[0], "read", audience="someone-else")) is grpc.StatusCode.UNAUTHENTICATED
    assert call(mint_token(rsa_keys[0], "read", now=time.time() - 7200)) is grpc.StatusCode.UNAUTHENTICATED
    assert call(mint_token(rsa_keys[0], "read:Vehicle.Cabin")) is grpc.StatusCode.PERMISSION_DENIED
    assert call(mint_token(ec_keys[0], "read:Vehicle.Speed")) is grpc.StatusCode.OK
    channel.close()


def test_provider_scope_is_enforced_on_the_stream(
    secured: RunningBroker, rsa_keys: tuple[bytes, bytes]
) -> None:
    channel, client = stub(secured)
    token = mint_token(rsa_keys[0], "provide:data:Vehicle.Speed")
    requests: queue.Queue[v.OpenProviderStreamRequest | None] = queue.Queue()
    stream = client.OpenProviderStream(
        iter(requests.get, None), metadata=[("authorization", f"Bearer {token}")]
    )
    requests.put(
        v.OpenProviderStreamRequest(
            provide_actuation_request=v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=LIMIT)])
        )
    )
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    requests.put(None)
    channel.close()


def test_mutual_tls(pki: Any) -> None:
    handle = start_broker(
        tls=TlsConfig(pki.server_cert, pki.server_key, client_ca=pki.ca_cert), address="localhost:0"
    )
    try:
        with_cert = grpc.ssl_channel_credentials(
            pki.ca_cert.read_bytes(), pki.client_key.read_bytes(), pki.client_cert.read_bytes()
        )
        channel = grpc.secure_channel(handle.target, with_cert)
        assert val_pb2_grpc.VALStub(channel).GetServerInfo(v.GetServerInfoRequest(), timeout=5).name
        channel.close()
        without = grpc.secure_channel(handle.target, grpc.ssl_channel_credentials(pki.ca_cert.read_bytes()))
        with pytest.raises(grpc.RpcError) as caught:
            val_pb2_grpc.VALStub(without).GetServerInfo(v.GetServerInfoRequest(), timeout=5)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        without.close()
    finally:
        handle.stop()
