#!/usr/bin/env bash
# Installs the peers weir-peers measures against, from Debian's packages, if they are missing.
# Called by the weir-peers program (never by CI). Prints nothing when all are present.
set -euo pipefail
missing=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in postgresql rabbitmq-server nats-server mosquitto; do
    have "$pkg" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install.sh: missing ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
fi
echo "install.sh: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# The packages' own services are not wanted: weir-peers starts each server itself on its own
# data directory. policy-rc.d keeps the maintainer scripts from starting them.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
status=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || status=$?
[ $created_policy = 1 ] && rm -f "$policy"
exit $status
