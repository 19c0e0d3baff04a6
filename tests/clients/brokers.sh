# Shared by the reference-broker scripts (sourced after `python` is set to the client venv's
# interpreter): a free port, waiting for a listener, and a RabbitMQ of the script's own.

# A free TCP port on 127.0.0.1.
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_port PORT SECONDS WHAT: returns once something accepts TCP connections on PORT of
# 127.0.0.1; fails the script after SECONDS, naming WHAT.
wait_for_port() {
    "$python" - "$1" "$2" "$3" <<'PY'
import socket, sys, time
port, seconds, what = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + seconds
while True:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not accept connections within {seconds:g} s")
        time.sleep(0.2)
PY
}

# start_rabbitmq NODE PLUGINS CONF: starts RabbitMQ as the current user on a temporary
# directory ($base), with its own node name, AMQP port ($amqp_port), distribution and epmd
# ports, so that it touches no system broker. PLUGINS is the enabled-plugins list (`[]`,
# `[rabbitmq_stomp]`), CONF the text of its rabbitmq.conf. It is stopped, and $base removed
# (kept if WEIR_KEEP_RABBITMQ_DIR is set), when the script exits.
start_rabbitmq() {
    base="$(mktemp -d)"
    amqp_port="$(free_port)"
    export HOME="$base" # the Erlang cookie
    export RABBITMQ_NODENAME="$1$$@localhost"
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
    echo "$2." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
    echo "$3" >"$base/rabbitmq.conf"
    # The broker itself, not Debian's wrapper (which switches to the rabbitmq user as root).
    local broker=/usr/lib/rabbitmq/bin/rabbitmq-server
    [ -x "$broker" ] || broker=rabbitmq-server
    (cd "$base" && exec "$broker") >"$base/server.out" 2>&1 &
    rabbitmq_pid=$!
    trap stop_rabbitmq EXIT
}

stop_rabbitmq() {
    kill "$rabbitmq_pid" 2>/dev/null || true
    wait "$rabbitmq_pid" 2>/dev/null || true
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
    [ -n "${WEIR_KEEP_RABBITMQ_DIR:-}" ] && echo "kept $base" >&2 || rm -rf "$base"
}
