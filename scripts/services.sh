# Sourced by `make test` and .ci/run: starts the servers the integration tests talk to and exports
# their URLs. It installs them from Debian's packages when it runs as root and they are missing;
# otherwise the tests that need them are skipped locally (and fail under CI=true).
# Idempotent: a server already started by an earlier run is reused. A second copy of the suite on
# the same machine gets a PostgreSQL of its own with OPENSDV_SERVICES_DIR and OPENSDV_PG_PORT.

_opensdv_state=${OPENSDV_SERVICES_DIR:-/tmp/opensdv-services}
_opensdv_pg_port=${OPENSDV_PG_PORT:-55432}
mkdir -p "$_opensdv_state"

_opensdv_apt() {
  [ "$(id -u)" = 0 ] || return 1
  if [ ! -f "$_opensdv_state/apt-updated" ]; then
    apt-get update -qq >/dev/null && touch "$_opensdv_state/apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ---- PostgreSQL on 127.0.0.1:$_opensdv_pg_port (55432), trust auth, database opensdv_test -------------------------
_opensdv_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$_opensdv_pg_bin" ]; then
  _opensdv_apt postgresql && _opensdv_pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
if [ -n "$_opensdv_pg_bin" ] && [ "$(id -u)" = 0 ]; then
  _opensdv_pg_data=$_opensdv_state/pg
  if ! su postgres -c "$_opensdv_pg_bin/pg_ctl -D $_opensdv_pg_data status" >/dev/null 2>&1; then
    rm -rf "$_opensdv_pg_data" && mkdir -p "$_opensdv_pg_data" && chown postgres "$_opensdv_pg_data"
    su postgres -c "$_opensdv_pg_bin/initdb -D $_opensdv_pg_data -A trust -U postgres" >/dev/null
    su postgres -c "$_opensdv_pg_bin/pg_ctl -D $_opensdv_pg_data -o '-p $_opensdv_pg_port -k /tmp -c listen_addresses=127.0.0.1' -l $_opensdv_pg_data/log -w start" >/dev/null
    su postgres -c "$_opensdv_pg_bin/createdb -h 127.0.0.1 -p $_opensdv_pg_port -U postgres opensdv_test"
  fi
  export OPENSDV_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$_opensdv_pg_port/opensdv_test
  echo "services: PostgreSQL at 127.0.0.1:$_opensdv_pg_port"
else
  echo "services: PostgreSQL not available (run as root to install it); its tests will be skipped"
fi

# ---- Mosquitto: installed only. Each link test starts its own, configured as `opensdv fleet
# mosquitto-config` writes it (mutual TLS, the link's ACL), so no anonymous broker ever runs here.
if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then
  _opensdv_apt mosquitto || echo "services: Mosquitto not available (run as root to install it); its link tests will be skipped"
fi

# ---- Chromium for the dashboard's browser test (Playwright drives Debian's build) -----------------
if ! command -v chromium >/dev/null 2>&1; then
  _opensdv_apt chromium || echo "services: Chromium not available; the browser test will be skipped"
fi
