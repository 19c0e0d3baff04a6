#!/usr/bin/env bash
# Creates (once) the virtual environment the client suite runs in: target/client-venv with the
# pinned boto3 and awscli of requirements.txt. Idempotent: a venv whose stamp matches the
# requirements is left alone, so `cargo test` pays for the install only the first time.
# Prints the venv's python on its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WEIR_CLIENT_VENV:-$root/target/client-venv}"
stamp="$venv/.weir-requirements"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
    echo "$venv/bin/python"
    exit 0
fi
# A half-made venv (an earlier run was stopped) is made again from nothing.
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$stamp"
echo "$venv/bin/python"
