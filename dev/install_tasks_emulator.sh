#!/usr/bin/env bash
# Installs the Cloud Tasks emulator into its own virtualenv under .local/.
#
# It lives apart from the product's venv because gcloud-tasks-emulator needs
# protobuf<5 (and grpcio-status 1.62.x, the last release that accepts it),
# while the product runs on protobuf 6. Every package is pinned so that each
# machine gets the same emulator. Safe to run repeatedly: a marker file
# records the installed pin set and the script exits early when it matches.
#
# Environment overrides: PYTHON (interpreter used for the venv, default
# python3) and TASKS_EMULATOR_VENV (venv location).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TASKS_EMULATOR_VENV:-$REPO_ROOT/.local/venvs/tasks-emulator}"
PYTHON="${PYTHON:-python3}"
MARKER="$VENV/.installed"

PINS=(
  "gcloud-tasks-emulator==0.6.2"
  "protobuf==4.25.9"
  "grpcio==1.85.1"
  "grpcio-status==1.62.3"
  "google-cloud-tasks==2.20.0"
  "google-api-core==2.30.3"
  "google-auth==2.43.0"
  "googleapis-common-protos==1.75.0"
  "grpc-google-iam-v1==0.14.4"
  "proto-plus==1.28.2"
  "PyYAML==6.0.3"
  "cachetools==6.2.6"
  "certifi==2026.10.18"
  "charset-normalizer==3.5.2"
  "idna==3.20"
  "pyasn1==0.6.5"
  "pyasn1_modules==0.4.2"
  "requests==2.34.2"
  "rsa==4.9.1"
  "typing_extensions==4.16.0"
  "urllib3==2.8.0"
)
EXPECTED="$(printf '%s\n' "${PINS[@]}")"

is_installed() {
  [[ -f "$MARKER" ]] \
    && [[ "$(cat "$MARKER")" == "$EXPECTED" ]] \
    && "$VENV/bin/python" -W ignore -c 'import gcloud_tasks_emulator.server' 2>/dev/null
}

mkdir -p "$(dirname "$VENV")"
# Serialise concurrent installs (e.g. parallel test runs) on one lock file.
exec 9>"$VENV.lock"
flock 9

if is_installed; then
  echo "tasks emulator already installed in $VENV"
  exit 0
fi

# A stale or half-built venv is cheaper to rebuild than to repair.
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
"$VENV/bin/python" -W ignore -c 'import gcloud_tasks_emulator.server'
printf '%s\n' "${PINS[@]}" >"$MARKER"
echo "tasks emulator installed in $VENV"
