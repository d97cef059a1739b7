"""The field's own client, ``kuksa-client`` (sync and aio), against our broker over the wire."""

from __future__ import annotations

import time

import pytest
from kuksa_client.grpc import Datapoint, DataType, EntryType, VSSClient, VSSClientError
from kuksa_client.grpc.aio import VSSClient as AsyncVSSClient

from opensdv.vehicle.broker import ALLOW_ALL, TlsConfig, mint_token
from tests.vehicle.broker.conftest import RunningBroker, start_broker

SPEED = "Vehicle.Speed"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def test_server_info_get_set_and_metadata(running: RunningBroker) -> None:
    with VSSClient("127.0.0.1", running.port) as client:
        info = client.get_server_info()
        assert info is not None and info.name == "opensdv-databroker"
        client.set_current_values({SPEED: Datapoint(42.5), SOC: Datapoint(81.0)})
        values = client.get_current_values([SPEED, SOC, "Vehicle.IsMoving"])
        assert values[SPEED].value == 42.5 and values[SOC].value == 81.0
        assert values["Vehicle.IsMoving"] is None
        client.set_target_values({LIMIT: Datapoint(80)})
        assert client.get_target_values([LIMIT])[LIMIT].value == 80
        metadata = client.get_metadata([LIMIT])[LIMIT]
        assert metadata.data_type is DataType.UINT8 and metadata.entry_type is EntryType.ACTUATOR
        assert metadata.unit == "percent" and metadata.value_restriction.max == 100
    assert running.call(running.broker.get, SPEED, ALLOW_ALL).value == 42.5


def test_subscribe_current_values(running: RunningBroker) -> None:
    running.call(running.broker.publish, {SPEED: 1.0}, ALLOW_ALL)
    seen = []
    with VSSClient("127.0.0.1", running.port) as client:
        for update in client.subscribe_current_values([SPEED, SOC]):
            seen.append(update)
            if len(seen) == 1:
                running.call(running.broker.publish, {SOC: 55.0}, ALLOW_ALL)
            else:
                break
    assert seen[0][SPEED].value == 1.0 and seen[0][SOC].value is None
    assert seen[1][SOC].value == 55.0


def test_errors_reach_the_client(running: RunningBroker) -> None:
    with VSSClient("127.0.0.1", running.port) as client:
        with pytest.raises(VSSClientError) as caught:
            client.get_current_values(["Vehicle.Nope"])
        assert caught.value.error["code"] == 404
        # kuksa-client sets current values through v2 PublishValue: gRPC status codes
        with pytest.raises(VSSClientError) as caught:
            client.set_current_values({LIMIT: Datapoint(150)})
        assert caught.value.error["code"] == 3 and "above the maximum 100" in caught.value.error["message"]
        with pytest.raises(VSSClientError) as caught:
            client.set_target_values({LIMIT: Datapoint(150)})  # v1 Set: HTTP-like codes
        assert caught.value.error["code"] == 400
    assert running.call(running.broker.get, LIMIT, ALLOW_ALL) is None


async def test_aio_client(running: RunningBroker) -> None:
    async with AsyncVSSClient("127.0.0.1", running.port) as client:
        await client.set_current_values({SPEED: Datapoint(12.0)})
        assert (await client.get_current_values([SPEED]))[SPEED].value == 12.0
        updates = client.subscribe_current_values([SPEED])
        first = await updates.__anext__()
        assert first[SPEED].value == 12.0
        running.call(running.broker.publish, {SPEED: 13.0}, ALLOW_ALL)
        assert (await updates.__anext__())[SPEED].value == 13.0
        await updates.aclose()


def test_tokens_with_kuksa_client(
    secured: RunningBroker, rsa_keys: tuple[bytes, bytes], ec_keys: tuple[bytes, bytes]
) -> None:
    reader = mint_token(rsa_keys[0], f"read:{SPEED}")
    writer = mint_token(ec_keys[0], "provide:Vehicle read")  # ES256
    with VSSClient("127.0.0.1", secured.port, token=writer) as client:
        client.set_current_values({SPEED: Datapoint(7.0)})
    with VSSClient("127.0.0.1", secured.port, token=reader) as client:
        assert client.get_current_values([SPEED])[SPEED].value == 7.0
        with pytest.raises(VSSClientError) as caught:
            client.get_current_values([SOC])
        assert caught.value.error["code"] == 403
        with pytest.raises(VSSClientError) as caught:
            client.set_current_values({SPEED: Datapoint(8.0)})
        assert caught.value.error["code"] == 7  # gRPC PERMISSION_DENIED from v2 PublishValue
    with VSSClient("127.0.0.1", secured.port) as client, pytest.raises(VSSClientError) as caught:
        client.get_current_values([SPEED])
    assert caught.value.error["code"] == 16  # gRPC UNAUTHENTICATED
    assert secured.call(secured.broker.get, SPEED, ALLOW_ALL).value == 7.0


def test_tls_with_kuksa_client(pki) -> None:  # type: ignore[no-untyped-def]
    handle = start_broker(tls=TlsConfig(pki.server_cert, pki.server_key), address="localhost:0")
    try:
        with VSSClient("localhost", handle.port, root_certificates=pki.ca_cert) as client:
            client.set_current_values({SPEED: Datapoint(99.0)})
            assert client.get_current_values([SPEED])[SPEED].value == 99.0
        with (
            VSSClient("localhost", handle.port, ensure_startup_connection=False) as plain,
            pytest.raises(VSSClientError),
        ):
            plain.get_current_values([SPEED], timeout=2)  # plaintext to a TLS port fails
    finally:
        handle.stop()


def test_expired_token_is_refused(secured: RunningBroker, rsa_keys: tuple[bytes, bytes]) -> None:
    stale = mint_token(rsa_keys[0], "read", lifetime_s=60, now=time.time() - 3600)
    with (
        VSSClient("127.0.0.1", secured.port, token=stale, ensure_startup_connection=False) as client,
        pytest.raises(VSSClientError) as caught,
    ):
        client.get_current_values([SPEED])
    assert caught.value.error["code"] == 16 and "expired" in caught.value.error["message"]
