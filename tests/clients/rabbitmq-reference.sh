#!/usr/bin/env bash
# Runs the AMQP conformance suite (test_amqp.py) against RabbitMQ, to check the suite's claims
# about the protocol on the reference broker. Opt-in: `cargo test` never runs it. Needs Debian's
# `rabbitmq-server` (apt-get install rabbitmq-server) and the client venv (setup.sh).
#
#   tests/clients/rabbitmq-reference.sh [unittest args, e.g. test_amqp.Exchanges]
#
# RabbitMQ runs as the current user on a temporary directory (its own node name, AMQP port,
# distribution port and epmd port, so it touches no system broker) and is stopped at the end.
# The cross-protocol tests skip (no SQS endpoint).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/setup.sh" | tail -n 1)"
base="$(mktemp -d)"
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
amqp_port="$(free_port)"
export HOME="$base" # the Erlang cookie
export RABBITMQ_NODENAME="weirref$$@localhost"
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
echo "[]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
: >"$base/rabbitmq.conf"

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

# Up to 60 s for the broker to accept AMQP connections.
"$python" - "$amqp_port" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 60
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("rabbitmq-server did not accept connections within 60 s")
        time.sleep(0.2)
EOF

cd "$here"
WEIR_AMQP="127.0.0.1:$amqp_port" WEIR_AMQP_REFERENCE=rabbitmq "$python" -m unittest -v "${@:-test_amqp}"
