"""The app runtime: each app in its own process, with exactly its manifest's rights.

For each app the runtime checks the vehicle meets the manifest's hardware needs, mints a token
whose scope is the manifest's reads and actuates (signed with the vehicle's app-signing key, which
the broker trusts), starts ``opensdv.vehicle.apps.host`` (which applies the manifest's memory and
CPU limits to itself before it imports the app) with a clean environment, private directories and,
under root, a user of its own (see ``isolation``), hands it the token on standard input, writes its
output to ``<logs>/<name>.log``, and restarts it after a crash up to ``max_restarts`` times with a
growing back-off.

A Velocitas app (``kind = "velocitas"``) cannot send a token or speak TLS: it gets a broker listener
of its own on loopback (``sdv.databroker.v1`` only) whose every call has exactly its manifest's
permissions, its address in ``SDV_VEHICLEDATABROKER_ADDRESS``, the in-car MQTT broker in
``SDV_MQTT_ADDRESS``, and its own Python environment (``environments``); the same limits, directories
and user apply.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from opensdv.model.vehicles import Vehicle
from opensdv.vehicle.apps.environments import AppEnvironments
from opensdv.vehicle.apps.errors import AppError
from opensdv.vehicle.apps.isolation import AppSandbox
from opensdv.vehicle.apps.manifest import AppManifest, load_manifest
from opensdv.vehicle.apps.package import unpack_app_set
from opensdv.vehicle.broker import Broker, BrokerServer, FixedPermissions, Permissions, mint_token

__all__ = ["AppRuntime", "AppStatus"]


@dataclass
class AppStatus:
    name: str
    version: str
    state: str = "stopped"  # starting, running, crashed, failed, stopped, refused
    pid: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    detail: str = ""
    isolation: str = ""  # how the process is kept apart (private directories, its own uid)


@dataclass
class _Running:
    manifest: AppManifest
    directory: Path
    status: AppStatus
    process: asyncio.subprocess.Process | None = None
    supervisor: asyncio.Task[None] | None = None
    stopping: bool = field(default=False)
    listener: BrokerServer | None = None  # a Velocitas app's own broker listener


# A Velocitas app's first instructions, run by its environment's interpreter: the manifest's limits,
# not dumpable (as opensdv.vehicle.apps.host), then the app's script as __main__ from its directory.
_VELOCITAS_LAUNCHER = """
import ctypes, resource, runpy, sys
memory, cpu, script = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
if cpu:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
if sys.platform == "linux":
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
sys.argv = [script]
sys.path.insert(0, script.rsplit("/", 1)[0])
runpy.run_path(script, run_name="__main__")
"""


class AppRuntime:
    """Runs each installed app in its own process with a token scoped to its manifest, restarting it with back-off."""
    def __init__(
        self,
        vehicle: Vehicle,
        broker_target: str,
        signing_key_pem: bytes,
        logs: Path,
        backoff_s: float = 0.5,
        private_root: Path | None = None,
        separate_users: bool | None = None,
        *,
        broker: Broker | None = None,
        environments: AppEnvironments | None = None,
        mqtt_address: str | None = None,
    ) -> None:
        """``private_root``: where each app's home and temporary directory go (default: beside
        ``logs``). ``separate_users``: run each app as a user of its own (default: when root).
        ``broker``: the broker core in this process, which Velocitas apps' listeners serve;
        ``environments``: where their Python environments are cached (default: beside ``logs``);
        ``mqtt_address``: the in-car MQTT broker they publish to (``mqtt://host:port``)."""
        self.vehicle = vehicle
        self.broker = broker
        self.environments = environments or AppEnvironments(logs.parent / "app-environments")
        self.mqtt_address = mqtt_address
        self.broker_target = broker_target
        self.signing_key_pem = signing_key_pem
        self.logs = logs
        self.backoff_s = backoff_s
        self.sandbox = AppSandbox(
            private_root or logs.parent / "app-private",
            os.geteuid() == 0 if separate_users is None else separate_users,
        )
        self._apps: dict[str, _Running] = {}

    def statuses(self) -> list[AppStatus]:
        return [r.status for r in self._apps.values()]

    def status(self, name: str) -> AppStatus:
        if name not in self._apps:
            raise AppError(f"no app {name!r} (apps: {', '.join(sorted(self._apps)) or 'none'})")
        return self._apps[name].status

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    async def start(self, directory: Path) -> AppStatus:
        """Check, then start the app in ``directory``; an app the vehicle cannot run is refused."""
        manifest = load_manifest(directory)
        if manifest.name in self._apps and self._apps[manifest.name].status.state in ("starting", "running"):
            raise AppError(f"app {manifest.name} is already running")
        status = AppStatus(manifest.name, manifest.version)
        unmet = manifest.unmet(self.vehicle)
        if unmet:
            status.state, status.detail = "refused", "; ".join(unmet)
            self._apps[manifest.name] = _Running(manifest, directory, status)
            return status
        running = self._apps[manifest.name] = _Running(manifest, directory, status)
        try:
            await self._launch(running)
        except AppError as exc:  # its environment could not be built, its script is missing, ...
            status.state, status.detail = "failed", str(exc)
            return status
        running.supervisor = asyncio.create_task(self._supervise(running))
        return status

    async def _spawn(self, running: _Running) -> asyncio.subprocess.Process:
        if running.manifest.kind == "velocitas":
            return await self._spawn_velocitas(running)
        manifest = running.manifest
        token = mint_token(
            self.signing_key_pem, manifest.scope(), subject=manifest.name, lifetime_s=24 * 3600
        )
        options, running.status.isolation = self.sandbox.prepare(manifest.name, running.directory)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.log_file(manifest.name).open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opensdv.vehicle.apps.host", str(running.directory.resolve()),
                self.broker_target, stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, **options,  # type: ignore[arg-type]
            )  # fmt: skip
        finally:
            log.close()
        assert process.stdin is not None
        process.stdin.write(token.encode() + b"\n")  # never in the environment, where /proc shows it
        await process.stdin.drain()
        process.stdin.close()
        return process

    async def _spawn_velocitas(self, running: _Running) -> asyncio.subprocess.Process:
        manifest = running.manifest
        assert manifest.environment is not None and manifest.script is not None  # the manifest checks both
        if self.broker is None:
            raise AppError(f"{manifest.name}: a Velocitas app needs the broker in this process (opensdv vehicle run)")
        running.status.detail = "building its Python environment" if not self.environments.ready(
            manifest.environment.requirements
        ) else ""
        python = await self.environments.python(manifest.environment.requirements)
        running.status.detail = ""
        if running.listener is None:
            permissions = Permissions.from_scope(manifest.scope(), manifest.name)
            running.listener = BrokerServer(
                self.broker, "127.0.0.1:0", authenticator=FixedPermissions(permissions), enable_v1=False, enable_v2=False,
                enable_sdv_v1=True,
            )  # fmt: skip
            await running.listener.start()
        options, running.status.isolation = self.sandbox.prepare(manifest.name, running.directory)
        environment = dict(options["env"])  # type: ignore[call-overload]
        environment |= {"SDV_MIDDLEWARE_TYPE": "native", "SDV_VEHICLEDATABROKER_ADDRESS": f"grpc://{running.listener.target}"}
        if self.mqtt_address:
            environment["SDV_MQTT_ADDRESS"] = self.mqtt_address
        limits = manifest.limits
        script = (running.directory / manifest.script).resolve()
        if not script.is_file() or not script.is_relative_to(running.directory.resolve()):
            raise AppError(f"{running.directory / 'app.toml'}: script {manifest.script} is not a file of the app")
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.log_file(manifest.name).open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                str(python), "-c", _VELOCITAS_LAUNCHER, str(limits.memory_mb * 1024 * 1024), str(limits.cpu_seconds or 0),
                str(script), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, **(options | {"env": environment}),  # type: ignore[arg-type]
            )  # fmt: skip
        finally:
            log.close()

    async def _launch(self, running: _Running) -> None:
        running.status.state = "starting"
        running.process = await self._spawn(running)
        running.status.state, running.status.pid = "running", running.process.pid

    async def _supervise(self, running: _Running) -> None:
        """Wait for the (already launched) process; restart it after a crash, within the limits."""
        status = running.status
        while True:
            assert running.process is not None  # launched by start() or by the previous round
            status.exit_code = await running.process.wait()
            status.pid = None
            if running.stopping or status.exit_code == 0:
                status.state = "stopped"
                return
            if status.restarts >= running.manifest.limits.max_restarts:
                status.state = "failed"
                status.detail = f"exited with {status.exit_code}; gave up after {status.restarts} restarts"
                return
            status.state = "crashed"
            status.restarts += 1
            await asyncio.sleep(self.backoff_s * 2 ** (status.restarts - 1))
            await self._launch(running)

    async def apply_set(self, data: bytes, workdir: Path) -> list[AppStatus]:
        """Run exactly the apps of an app set (the ``APPS`` ECU's active image): stop the ones it no
        longer holds or holds in another version, start the new ones."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        directories = {load_manifest(d).name: d for d in unpack_app_set(data, workdir / digest)}
        for name, running in list(self._apps.items()):
            wanted = directories.get(name)
            if wanted is None or load_manifest(wanted).version != running.manifest.version:
                await self.stop(name)
                del self._apps[name]
        for name, directory in directories.items():
            if name not in self._apps:
                await self.start(directory)
        return self.statuses()

    async def wait(self, name: str) -> AppStatus:
        """Until the app has ended for good (stopped, or failed after its restarts)."""
        running = self._apps.get(name)
        if running is None:
            raise AppError(f"no app {name!r}")
        if running.supervisor is not None:
            await running.supervisor
        return running.status

    async def stop(self, name: str, timeout_s: float = 5.0) -> AppStatus:
        running = self._apps.get(name)
        if running is None:
            raise AppError(f"no app {name!r}")
        running.stopping = True
        process = running.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout_s)
            except TimeoutError:
                process.kill()
        if running.supervisor is not None:
            running.supervisor.cancel()
            await asyncio.gather(running.supervisor, return_exceptions=True)
        if running.listener is not None:
            await running.listener.stop(0)
            running.listener = None
        running.status.state, running.status.pid = "stopped", None
        return running.status

    async def stop_all(self) -> None:
        for name in list(self._apps):
            await self.stop(name)
