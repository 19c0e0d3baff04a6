#!/usr/bin/env bash
# Runs the STOMP conformance suite (test_stomp.py) against RabbitMQ's STOMP plugin, to check
# the suite's claims about the protocol on the reference broker. Opt-in: `cargo test` never
# runs it. Needs Debian's `rabbitmq-server` (apt-get install rabbitmq-server; the STOMP plugin
# ships with it) and the client venv (setup.sh).
#
#   tests/clients/rabbitmq-stomp-reference.sh [unittest args, e.g. test_stomp.Transactions]
#
# RabbitMQ runs as the current user on a temporary directory (its own node name, ports and
# epmd, so it touches no system broker) and is stopped at the end. RabbitMQ checks
# credentials (guest/guest from localhost), so the wrong-credentials test runs too; the
# cross-protocol test runs against RabbitMQ's own AMQP port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/setup.sh" | tail -n 1)"
base="$(mktemp -d)"
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
amqp_port="$(free_port)"
stomp_port="$(free_port)"
export HOME="$base" # the Erlang cookie
export RABBITMQ_NODENAME="weirstomp$$@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$amqp_port"
export RABBITMQ_DIST_PORT="$(free_port)"
export ERL_EPMD_PORT="$(free_port)"
export RABBITMQ_MNESIA_BASE="$base/mnesia"
export RABBITMQ_LOG_BASE="$base/log"
export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$base/rabbitmq"
export RABBITMQ_FEATURE_FLAGS_FILE="$base/feature_flags"
export ERL_CRASH_DUMP="$base/erl_crash.dump"
mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
echo "[rabbitmq_stomp]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
echo "stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port" >"$base/rabbitmq.conf"

# The broker itself, not Debian's wrapper (which switches to the rabbitmq user when run as root).
broker=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$broker" ] || broker=rabbitmq-server
(cd "$base" && exec "$broker") >"$base/server.out" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    [ -n "${WEIR_KEEP_RABBITMQ_DIR:-}" ] && echo "kept $base" >&2 || rm -rf "$base"
}
trap cleanup EXIT

# Up to 90 s for the broker to accept STOMP connections (the plugin starts last).
"$python" - "$stomp_port" <<'PY'
import socket, sys, time
deadline = time.monotonic() + 90
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("rabbitmq-server did not accept STOMP connections within 90 s")
        time.sleep(0.2)
PY

cd "$here"
WEIR_STOMP="127.0.0.1:$stomp_port" WEIR_AMQP="127.0.0.1:$amqp_port" WEIR_STOMP_CHECKS_CREDENTIALS=1 WEIR_STOMP_REFERENCE=rabbitmq \
    "$python" -m unittest -v "${@:-test_stomp}"
