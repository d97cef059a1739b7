"""A charging-station management system (CSMS) speaking OCPP 2.0.1 and 1.6 over websockets.

Stations connect to ``ws://host:port/<station id>`` (``wss://`` with TLS) with the ``ocpp2.0.1``
subprotocol (or ``ocpp1.6``: see ``csms_v16``); stations
the CSMS does not know are refused at the handshake (HTTP 404), so nothing unknown reaches the
handlers. Message validation against the OCPP JSON schemas, and the protocol's error replies
(FormatViolation, NotImplemented, ...), come from the ``ocpp`` package.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import itertools
import ssl
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Protocol

from ocpp.routing import after, on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201 import datatypes as dt
from ocpp.v201 import enums as e
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.ocpp.csms_state import (
    CsmsError,
    SessionBasics,
    StatePersistence,
    StationState,
    Transaction,
    energy_and_power,
    parse_charging_needs,
    utc_now,
)
from opensdv.cloud.energy.ocpp.csms_v16 import SUBPROTOCOL_16, StationSession16
from opensdv.cloud.energy.ocpp.csms_v21 import SUBPROTOCOL_21, V2xMixin
from opensdv.link.identity import identity_of

__all__ = ["Csms", "CsmsError", "StationAuthenticator", "StationState", "Transaction", "listening_url"]

SUBPROTOCOL = Subprotocol("ocpp2.0.1")


def _station_id(path: str) -> str:
    """OCPP-J puts the station id last in the websocket URL path."""
    return path.strip("/").rsplit("/", 1)[-1]


def _basic_auth(request: Request) -> tuple[str, str] | None:
    """The (user, password) of an HTTP Basic ``Authorization`` header, if it holds one."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None


def _certificate_name(connection: ServerConnection) -> str | None:
    """The common name of the client certificate the station presented (verified by TLS), if any."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    return identity_of(ssl_object.getpeercert()) if ssl_object is not None else None


class StationAuthenticator(Protocol):
    def accepts(self, station_id: str, password: str | None, certificate_name: str | None) -> bool: ...


class _Passwords:
    """Passwords held in memory, one per station (tests and embedded uses; the cloud keeps hashes)."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self._passwords = dict(passwords)

    def accepts(self, station_id: str, password: str | None, certificate_name: str | None) -> bool:
        expected = self._passwords.get(station_id)
        return expected is not None and password is not None and hmac.compare_digest(password, expected)


class _StationSession(SessionBasics, ChargePoint):  # type: ignore[misc]  # the ocpp package has no type hints
    """The CSMS side of one station's websocket: OCPP handlers that update its ``StationState``."""

    def _token_status(self, token: str) -> e.AuthorizationStatusEnumType:
        return (
            e.AuthorizationStatusEnumType.accepted
            if self._known(token)
            else e.AuthorizationStatusEnumType.invalid
        )

    @on(e.Action.boot_notification)
    def on_boot(
        self, charging_station: dict[str, Any], reason: str, **_: Any
    ) -> call_result.BootNotification:
        self.state.vendor = charging_station["vendor_name"]
        self.state.model = charging_station["model"]
        self.state.firmware = charging_station.get("firmware_version")
        self._persist()
        return call_result.BootNotification(
            current_time=utc_now(self.clock), interval=self._heartbeat_s, status=e.RegistrationStatusEnumType.accepted
        )

    @after(e.Action.boot_notification)
    async def resync(self, **_: Any) -> None:
        """After a CSMS restart (or a lost connection): ask about every transaction still open here;
        one the station no longer runs ended while nobody listened."""
        for transaction in list(self.state.transactions.values()):
            if transaction.ended is not None:
                continue
            reply = await self.call(call.GetTransactionStatus(transaction_id=transaction.transaction_id))
            if not reply.ongoing_indicator:
                transaction.ended, transaction.stopped_reason = utc_now(self.clock), "EndedWhileCsmsAway"
                self._persist(transaction)
        self.synced.set()

    @on(e.Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        self.state.last_heartbeat = utc_now(self.clock)
        return call_result.Heartbeat(current_time=self.state.last_heartbeat)

    @on(e.Action.status_notification)
    def on_status(
        self, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> call_result.StatusNotification:
        self.state.connectors[(evse_id, connector_id)] = connector_status
        self._persist()
        return call_result.StatusNotification()

    @on(e.Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_token_info={"status": self._token_status(id_token["id_token"])})

    @on(e.Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.TransactionEvent:
        energy, power = energy_and_power(meter_value or [])  # refused values change nothing
        tid = transaction_info["transaction_id"]
        transaction = self.state.transactions.get(tid)
        if transaction is None:  # a Started event, or an Updated/Ended one whose Started was lost
            transaction = Transaction(tid, (evse or {}).get("id", 0), timestamp)
            self.state.transactions[tid] = transaction
        if id_token is not None:
            transaction.id_token = id_token["id_token"]
        if energy is not None:
            transaction.metered(energy)
        if power is not None:
            transaction.power_w = power
        if event_type == e.TransactionEventEnumType.ended:
            transaction.ended = timestamp
            transaction.stopped_reason = transaction_info.get("stopped_reason")
            self.state.ev_needs.pop(transaction.evse_id, None)  # the car's; the next one says its own
        self._persist(transaction)
        if id_token is not None:
            return call_result.TransactionEvent(
                id_token_info={"status": self._token_status(id_token["id_token"])}
            )
        return call_result.TransactionEvent()

    @on(e.Action.meter_values)
    def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any
    ) -> call_result.MeterValues:
        energy, power = energy_and_power(meter_value)
        for transaction in self.state.transactions.values():
            if transaction.evse_id == evse_id and transaction.ended is None:
                if energy is not None:
                    transaction.metered(energy)
                transaction.power_w = power if power is not None else transaction.power_w
                self._persist(transaction)
        return call_result.MeterValues()

    @on(e.Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        self.state.firmware_status.append(status)
        return call_result.FirmwareStatusNotification()

    @on(e.Action.notify_ev_charging_needs)
    def on_ev_charging_needs(
        self, charging_needs: dict[str, Any], evse_id: int, **_: Any
    ) -> call_result.NotifyEVChargingNeeds:
        """The car's needs (ISO 15118), as a managed site plans with them."""
        self.state.ev_needs[evse_id] = parse_charging_needs(charging_needs)
        self._persist()
        return call_result.NotifyEVChargingNeeds(status=e.NotifyEVChargingNeedsStatusEnumType.accepted)

    # -- commands (OCPP 2.0.1) ------------------------------------------------------------------
    async def set_power_limit(self, evse_id: int, watts: float, profile_id: int) -> None:
        station_id = self.state.station_id
        profile = dt.ChargingProfileType(
            id=profile_id,
            stack_level=0,
            charging_profile_purpose=e.ChargingProfilePurposeEnumType.tx_default_profile,
            charging_profile_kind=e.ChargingProfileKindEnumType.absolute,
            charging_schedule=[
                dt.ChargingScheduleType(
                    id=profile_id,
                    start_schedule=utc_now(self.clock),
                    charging_rate_unit=e.ChargingRateUnitEnumType.watts,
                    charging_schedule_period=[dt.ChargingSchedulePeriodType(start_period=0, limit=watts)],
                )
            ],
        )
        reply = await self.call(call.SetChargingProfile(evse_id=evse_id, charging_profile=profile))
        if reply.status != e.ChargingProfileStatusEnumType.accepted:
            raise CsmsError(
                f"{station_id}: SetChargingProfile {watts:g} W on EVSE {evse_id} was {reply.status}"
            )

    async def clear_power_limits(self, evse_id: int) -> None:
        station_id = self.state.station_id
        reply = await self.call(
            call.ClearChargingProfile(charging_profile_criteria=dt.ClearChargingProfileType(evse_id=evse_id))
        )
        if reply.status != e.ClearChargingProfileStatusEnumType.accepted:
            raise CsmsError(f"{station_id}: ClearChargingProfile on EVSE {evse_id} was {reply.status}")

    async def power_schedule(self, evse_id: int, duration_s: int) -> list[tuple[int, float]]:
        station_id = self.state.station_id
        reply = await self.call(
            call.GetCompositeSchedule(
                duration=duration_s, evse_id=evse_id, charging_rate_unit=e.ChargingRateUnitEnumType.watts
            )
        )
        if reply.status != e.GenericStatusEnumType.accepted or reply.schedule is None:
            raise CsmsError(f"{station_id}: GetCompositeSchedule on EVSE {evse_id} was {reply.status}")
        return [(p["start_period"], float(p["limit"])) for p in reply.schedule["charging_schedule_period"]]

    async def remote_start(self, evse_id: int, id_token: str, remote_start_id: int) -> None:
        station_id = self.state.station_id
        reply = await self.call(
            call.RequestStartTransaction(
                id_token=dt.IdTokenType(id_token=id_token, type=e.IdTokenEnumType.central),
                remote_start_id=remote_start_id,
                evse_id=evse_id,
            )
        )
        if reply.status != e.RequestStartStopStatusEnumType.accepted:
            raise CsmsError(f"{station_id}: RequestStartTransaction on EVSE {evse_id} was {reply.status}")

    async def update_firmware(self, location: str, request_id: int, retrieve_at: str | None = None) -> None:
        reply = await self.call(
            call.UpdateFirmware(
                request_id=request_id,
                firmware=dt.FirmwareType(location=location, retrieve_date_time=retrieve_at or utc_now(self.clock)),
            )
        )
        if reply.status != e.UpdateFirmwareStatusEnumType.accepted:
            raise CsmsError(f"{self.state.station_id}: UpdateFirmware {location} was {reply.status}")

    async def remote_stop(self, transaction_id: str) -> None:
        station_id = self.state.station_id
        reply = await self.call(call.RequestStopTransaction(transaction_id=transaction_id))
        if reply.status != e.RequestStartStopStatusEnumType.accepted:
            raise CsmsError(f"{station_id}: RequestStopTransaction {transaction_id} was {reply.status}")

    async def local_list_version(self) -> int:
        return int((await self.call(call.GetLocalListVersion())).version_number)

    async def send_local_list(self, version: int, entries: Mapping[str, str], full: bool) -> None:
        """``entries``: token -> Accepted or Blocked (RFID cards: ISO 14443 tokens)."""
        listed = [
            dt.AuthorizationData(
                id_token=dt.IdTokenType(id_token=token, type=e.IdTokenEnumType.iso14443),
                id_token_info=dt.IdTokenInfoType(status=e.AuthorizationStatusEnumType(status)),
            )
            for token, status in entries.items()
        ]
        update = e.UpdateEnumType.full if full else e.UpdateEnumType.differential
        reply = await self.call(
            call.SendLocalList(
                version_number=version, update_type=update, local_authorization_list=listed or None
            )
        )
        if reply.status != e.SendLocalListStatusEnumType.accepted:
            raise CsmsError(f"{self.state.station_id}: SendLocalList version {version} was {reply.status}")


class _Observed:
    """The CSMS's persistence, telling listeners of every change it writes (a managed site
    re-plans when a car plugs in, says what it needs, or leaves)."""

    def __init__(self, store: StatePersistence | None, listeners: list[Callable[[str], None]]) -> None:
        self._store, self._listeners = store, listeners

    def load(self) -> dict[str, StationState]:
        return self._store.load() if self._store is not None else {}

    def save(self, state: StationState, transaction: Transaction | None = None) -> None:
        if self._store is not None:
            self._store.save(state, transaction)
        for listener in self._listeners:
            listener(state.station_id)


class StationSession21(V2xMixin, _StationSession):
    """An OCPP 2.1 station: the 2.0.1 handlers (validated against 2.1's schemas) plus V2X."""


class Csms:
    """The operator's side: which stations may connect, their state, and commands to them."""

    def __init__(
        self,
        stations: Iterable[str] | Mapping[str, str],
        heartbeat_s: int = 60,
        store: StatePersistence | None = None,
        id_tokens: Iterable[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        credentials: StationAuthenticator | None = None,
        liveness_s: float = 5.0,
    ) -> None:
        """``stations``: ids, or ids with their passwords (HTTP Basic auth, the station id as user
        name). ``credentials`` checks each station's own password or certificate instead
        (``StationCredentials``: what the cloud and the CLI use); with neither, any client may
        connect as a listed id (tests only). With a ``store`` the state survives restarts: what it holds
        is loaded now, and every change is written as it happens. ``id_tokens``: the authorisation
        list (RFID cards, app tokens); others are answered Invalid. None accepts every token.
        ``liveness_s``: how long a connected station has to answer a ping before a new connection
        with its credentials replaces it (a live one is never taken over)."""
        if credentials is None and isinstance(stations, Mapping):
            credentials = _Passwords(stations)
        self._credentials = credentials
        self.liveness_s = liveness_s
        self._listeners: list[Callable[[str], None]] = []
        self._store = _Observed(store, self._listeners)
        known = self._store.load()
        self.stations = {sid: known.get(sid) or StationState(sid) for sid in stations}
        # OCPP 1.6 transaction ids are the CSMS's to give: past every id it has stored, for all its stations
        given = [int(t) for state in known.values() for t in state.transactions if t.isdigit()]
        self._transaction_ids = itertools.count(max(given, default=0) + 1)
        # one live set: every session sees changes at once
        self._id_tokens = set(id_tokens) if id_tokens is not None else None
        self._blocked: set[str] = set()  # taken off the list: stations must refuse them offline too
        self._sessions: dict[str, _StationSession | StationSession16] = {}  # 2.1 sessions are 2.0.1 ones
        self._heartbeat_s = heartbeat_s
        self._profile_ids = 0
        self.clock = clock

    def connected(self) -> list[str]:
        """The stations connected now."""
        return sorted(self._sessions)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(station_id)`` whenever a station's state changes or its connection ends."""
        self._listeners.append(listener)

    async def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = _station_id(request.path)
        if station_id not in self.stations:
            return connection.respond(HTTPStatus.NOT_FOUND, f"unknown charging station {station_id!r}\n")
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if not any(p in offered for p in (SUBPROTOCOL_21, SUBPROTOCOL, SUBPROTOCOL_16)):
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                f"the CSMS speaks {SUBPROTOCOL_21}, {SUBPROTOCOL} and {SUBPROTOCOL_16}\n",
            )
        if self._credentials is not None:
            login = _basic_auth(request)
            password = login[1] if login is not None and login[0] == station_id else None
            if not self._credentials.accepts(station_id, password, _certificate_name(connection)):
                response = connection.respond(
                    HTTPStatus.UNAUTHORIZED, f"station {station_id!r}: wrong or no credentials\n"
                )
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP"'
                return response
        if station_id in self._sessions and await self._alive(self._sessions[station_id]):
            return connection.respond(
                HTTPStatus.CONFLICT, f"station {station_id!r} is connected already; one connection per station\n"
            )
        return None

    async def _alive(self, session: _StationSession | StationSession16) -> bool:
        """Whether a station's connection answers a ping; a dead one is dropped (it would keep the id)."""
        connection: ServerConnection = session._connection
        try:
            pong = await connection.ping()
            await asyncio.wait_for(pong, self.liveness_s)
        except (TimeoutError, ConnectionClosed):
            connection.transport.abort()
            return False
        return True

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # the handshake has happened
        station_id = _station_id(connection.request.path)
        kinds: dict[str, type[_StationSession] | type[StationSession16]] = {
            SUBPROTOCOL_16: StationSession16,
            SUBPROTOCOL_21: StationSession21,
        }
        kind = kinds.get(connection.subprotocol or SUBPROTOCOL, _StationSession)
        session = kind(
            self.stations[station_id], connection, self._heartbeat_s, self._store, self._id_tokens, self.clock
        )
        if isinstance(session, StationSession16):
            session.transaction_ids = self._transaction_ids
        self._sessions[station_id] = session
        try:
            with contextlib.suppress(ConnectionError, ConnectionClosed):  # the station went away
                await session.start()
        finally:
            if self._sessions.get(station_id) is session:  # not a newer connection that replaced it
                del self._sessions[station_id]
            session.ended.set()
            for listener in self._listeners:
                listener(station_id)

    async def serve(
        self, host: str = "127.0.0.1", port: int = 9000, tls: ssl.SSLContext | None = None
    ) -> Server:
        """Start listening (``wss://`` with ``tls``: with station passwords, OCPP security profile 2);
        the caller closes the returned server."""
        return await serve(
            self._handle,
            host,
            port,
            subprotocols=[SUBPROTOCOL_21, SUBPROTOCOL, SUBPROTOCOL_16],
            process_request=self._check_handshake,
            ssl=tls,
        )

    async def wait_disconnected(self, station_id: str) -> None:
        """Until the station's current connection (if any) has ended."""
        session = self._sessions.get(station_id)
        if session is not None:
            await session.ended.wait()

    async def wait_synced(self, station_id: str) -> None:
        """Until the connected station's open transactions have been checked after its boot."""
        await self._session(station_id).synced.wait()

    async def update_firmware(
        self, station_id: str, location: str, request_id: int, retrieve_at: str | None = None
    ) -> None:
        """UpdateFirmware: the station downloads ``location`` and reports progress with
        FirmwareStatusNotification (``StationState.firmware_status``)."""
        await self._session(station_id).update_firmware(location, request_id, retrieve_at)

    def _session(self, station_id: str) -> _StationSession | StationSession16:
        session = self._sessions.get(station_id)
        if session is None:
            raise CsmsError(f"charging station {station_id!r} is not connected")
        return session

    async def set_power_limit(self, station_id: str, evse_id: int, watts: float) -> None:
        """Send a TxDefaultProfile limiting the EVSE to ``watts`` (negative: discharge, V2G)."""
        self._profile_ids += 1
        await self._session(station_id).set_power_limit(evse_id, watts, self._profile_ids)

    async def clear_power_limits(self, station_id: str, evse_id: int) -> None:
        """ClearChargingProfile for the EVSE: the station charges at its own maximum again."""
        await self._session(station_id).clear_power_limits(evse_id)

    async def power_schedule(self, station_id: str, evse_id: int, duration_s: int) -> list[tuple[int, float]]:
        """GetCompositeSchedule in watts: what the station will really allow, as (start s, limit W)."""
        return await self._session(station_id).power_schedule(evse_id, duration_s)

    async def remote_start(self, station_id: str, evse_id: int, id_token: str, remote_start_id: int) -> None:
        await self._session(station_id).remote_start(evse_id, id_token, remote_start_id)

    async def remote_stop(self, station_id: str, transaction_id: str) -> None:
        await self._session(station_id).remote_stop(transaction_id)

    def _list(self) -> set[str]:
        if self._id_tokens is None:
            raise CsmsError("this CSMS accepts every token: it has no authorisation list to send")
        return self._id_tokens

    @staticmethod
    async def _send_list(
        session: _StationSession | StationSession16,
        accepted: Iterable[str],
        blocked: Iterable[str],
        full: bool,
    ) -> int:
        """One SendLocalList, one past the station's own version (GetLocalListVersion); the version."""
        entries = dict.fromkeys(sorted(accepted), "Accepted") | dict.fromkeys(sorted(blocked), "Blocked")
        version = await session.local_list_version() + 1
        await session.send_local_list(version, entries, full=full)
        return version

    async def send_local_list(self, station_id: str) -> int:
        """SendLocalList, Full: the authorisation list (accepted and blocked tokens) becomes the
        station's local list, which it decides by while it cannot reach the CSMS; returns the
        version sent."""
        return await self._send_list(self._session(station_id), self._list(), self._blocked, full=True)

    async def change_id_tokens(self, accept: Iterable[str] = (), block: Iterable[str] = ()) -> dict[str, int]:
        """Accept or block tokens now, and send the change to every connected station as a
        Differential SendLocalList (a lost card is refused at once, online or not); returns each
        station's new list version. A station that refuses raises ``CsmsError`` after the others
        were sent theirs."""
        tokens, accepted, blocked = self._list(), set(accept), set(block)
        tokens.difference_update(blocked)
        tokens.update(accepted)
        self._blocked.difference_update(accepted)
        self._blocked.update(blocked)
        versions: dict[str, int] = {}
        failures: list[str] = []
        for station_id, session in list(self._sessions.items()):
            try:
                versions[station_id] = await self._send_list(session, accepted, blocked, full=False)
            except CsmsError as error:
                failures.append(str(error))
        if failures:
            raise CsmsError("; ".join(failures))
        return versions


def listening_url(server: Server, scheme: str = "ws") -> str:
    """Where a server from ``Csms.serve`` listens (port 0 there picks any free port)."""
    host, port = next(iter(server.sockets)).getsockname()[:2]
    return f"{scheme}://{host}:{port}"
