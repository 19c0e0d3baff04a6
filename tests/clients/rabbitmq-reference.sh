#!/usr/bin/env bash
# Runs the AMQP conformance suite (test_amqp.py) against RabbitMQ, to check the suite's claims
# about the protocol on the reference broker. Opt-in: `cargo test` never runs it. Needs Debian's
# `rabbitmq-server` (apt-get install rabbitmq-server) and the client venv (setup.sh).
#
#   tests/clients/rabbitmq-reference.sh [unittest args, e.g. test_amqp.Exchanges]
#
# RabbitMQ runs as the current user on a temporary directory (brokers.sh: its own node name,
# AMQP port, distribution port and epmd port, so it touches no system broker) and is stopped at
# the end. The cross-protocol tests skip (no SQS endpoint).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$("$here/setup.sh" | tail -n 1)"
source "$here/brokers.sh"
start_rabbitmq weirref "[]" ""
wait_for_port "$amqp_port" 60 "rabbitmq-server"

cd "$here"
WEIR_AMQP="127.0.0.1:$amqp_port" WEIR_AMQP_REFERENCE=rabbitmq "$python" -m unittest -v "${@:-test_amqp}"
