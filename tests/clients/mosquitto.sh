#!/usr/bin/env bash
# Runs the MQTT conformance suite (test_mqtt.py) against Mosquitto from Debian's packages
# (`apt-get install mosquitto`), to show the suite checks the protocol and not weir's quirks.
# Starts `mosquitto` on a temporary directory and a free port, runs the suite in the client
# venv, stops the broker. Opt-in from `cargo test`: WEIR_REFERENCE_BROKERS=1 (tests/mqtt_clients.rs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mosquitto="${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}"
[ -x "$mosquitto" ] || { echo "mosquitto not found (apt-get install mosquitto)" >&2; exit 2; }
python="$(bash "$here/setup.sh" | tail -n 1)"
source "$here/brokers.sh"
dir="$(mktemp -d)"
chmod 777 "$dir"  # mosquitto started as root drops to its own user
port="$(free_port)"
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/
log_dest file $dir/mosquitto.log
CONF
"$mosquitto" -c "$dir/mosquitto.conf" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
wait_for_port "$port" 5 "mosquitto"
cd "$here"
MQTT_HOST=127.0.0.1 MQTT_PORT="$port" "$python" -m unittest -v test_mqtt.py
