#!/usr/bin/env bash
# Installs a pinned tool into its own virtualenv under .local/venvs/<tool>: `dev/install_tool.sh checkov` or
# `dev/install_tool.sh tasks-emulator`. The pins are dev/tools/<tool>.txt; each such tool pins libraries that
# would fight the product's own. Safe to run repeatedly: a marker file records the installed pin set and the
# script exits early when it matches.
#
# Environment overrides: PYTHON (interpreter used for the venv, default python3) and TOOL_VENV (venv location).
set -euo pipefail

TOOL="${1:?usage: dev/install_tool.sh checkov|tasks-emulator}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIN_FILE="$REPO_ROOT/dev/tools/$TOOL.txt"
VENV="${TOOL_VENV:-$REPO_ROOT/.local/venvs/$TOOL}"
PYTHON="${PYTHON:-python3}"
MARKER="$VENV/.installed"
[[ -f "$PIN_FILE" ]] || { echo "no pins for $TOOL ($PIN_FILE)" >&2; exit 2; }

case "$TOOL" in
  checkov) check() { "$VENV/bin/checkov" --version >/dev/null 2>&1; } ;;
  tasks-emulator) check() { "$VENV/bin/python" -W ignore -c 'import gcloud_tasks_emulator.server' 2>/dev/null; } ;;
  *) check() { true; } ;;
esac
EXPECTED="$(grep -v '^#' "$PIN_FILE")"

mkdir -p "$(dirname "$VENV")"
# Serialise concurrent installs (parallel lint or test runs) on one lock file.
exec 9>"$VENV.lock"
flock 9

if [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$EXPECTED" ]] && check; then
  exit 0
fi

# A stale or half-built venv is cheaper to rebuild than to repair.
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$PIN_FILE"
check || { echo "$TOOL did not install cleanly in $VENV" >&2; exit 1; }
printf '%s\n' "$EXPECTED" >"$MARKER"
echo "$TOOL installed in $VENV"
