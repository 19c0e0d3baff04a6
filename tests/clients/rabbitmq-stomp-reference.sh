#!/usr/bin/env bash
# Runs the STOMP conformance suite (test_stomp.py) against RabbitMQ's STOMP plugin, to check
# the suite's claims about the protocol on the reference broker. Opt-in: `cargo test` never
# runs it. Needs Debian's `rabbitmq-server` (apt-get install rabbitmq-server; the STOMP plugin
# ships with it) and the client venv (setup.sh).
#
#   tests/clients/rabbitmq-stomp-reference.sh [unittest args, e.g. test_stomp.Transactions]
#
# RabbitMQ runs as the current user on a temporary directory (brokers.sh: its own node name,
# ports and epmd, so it touches no system broker) and is stopped at the end. RabbitMQ checks
# credentials (guest/guest from localhost), so the wrong-credentials test runs too; the
# cross-protocol test runs against RabbitMQ's own AMQP port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/setup.sh" | tail -n 1)"
source "$here/brokers.sh"
stomp_port="$(free_port)"
start_rabbitmq weirstomp "[rabbitmq_stomp]" "stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port"
# The STOMP plugin starts last.
wait_for_port "$stomp_port" 90 "rabbitmq-server's STOMP listener"

cd "$here"
WEIR_STOMP="127.0.0.1:$stomp_port" WEIR_AMQP="127.0.0.1:$amqp_port" WEIR_STOMP_CHECKS_CREDENTIALS=1 WEIR_STOMP_REFERENCE=rabbitmq \
    "$python" -m unittest -v "${@:-test_stomp}"
