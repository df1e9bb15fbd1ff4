#!/usr/bin/env bash
# Installs what the API document tests drive: headless Chromium (the /v1/docs page), newman and
# openapi-to-postmanv2 (a Postman collection from /v1/openapi.json), and openapi-python-client (a generated client).
#
# Each lives apart from the product's venv: the npm packages under .local/node-tools from the committed lock file
# (dev/test-tools), openapi-python-client in .local/venvs/openapi-python-client with every package pinned (it pins
# typer, ruff and pydantic versions of its own). Safe to run repeatedly: each part is skipped when its marker
# matches. Chromium comes from the system's apt when missing and this runs as root; otherwise the script says so,
# and the tests needing it fail under CI=true (skip, reported, elsewhere).
#
# Environment overrides: PYTHON (interpreter for the venv, default python3), CHROMIUM (a browser already installed).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$REPO_ROOT/.local"
PYTHON="${PYTHON:-python3}"
mkdir -p "$LOCAL/venvs"
exec 9>"$LOCAL/test-tools.lock"
flock 9

# --- Chromium -------------------------------------------------------------------------------------------------
if [[ -n "${CHROMIUM:-}" ]] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  :
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  APT_UPDATED=1
else
  echo "WARNING: chromium is not installed and cannot be installed here (needs root and apt):" \
       "the /v1/docs browser tests will be skipped, or fail under CI=true" >&2
fi

# --- newman and openapi-to-postmanv2 ----------------------------------------------------------------------------
NODE_DIR="$LOCAL/node-tools"
if ! command -v npm >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "installing node and npm (apt)"
  [[ -n "${APT_UPDATED:-}" ]] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if command -v npm >/dev/null 2>&1; then
  WANT="$(cat "$REPO_ROOT/dev/test-tools/package.json" "$REPO_ROOT/dev/test-tools/package-lock.json" | sha256sum)"
  if [[ ! -f "$NODE_DIR/.installed" ]] || [[ "$(cat "$NODE_DIR/.installed")" != "$WANT" ]] \
      || [[ ! -x "$NODE_DIR/node_modules/.bin/newman" ]]; then
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$REPO_ROOT/dev/test-tools/package.json" "$REPO_ROOT/dev/test-tools/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$WANT" >"$NODE_DIR/.installed"
    echo "newman and openapi-to-postmanv2 installed in $NODE_DIR"
  fi
else
  echo "WARNING: npm is not installed: the Postman collection test will be skipped, or fail under CI=true" >&2
fi

# --- openapi-python-client ---------------------------------------------------------------------------------------
VENV="$LOCAL/venvs/openapi-python-client"
PINS=(
  "openapi-python-client==0.29.1"
  "annotated-doc==0.0.7"
  "annotated-types==0.8.0"
  "anyio==4.16.0"
  "attrs==26.1.0"
  "certifi==2026.10.19.post1"
  "h11==0.16.0"
  "httpcore==1.0.9"
  "httpx==0.28.1"
  "idna==3.20"
  "Jinja2==3.1.6"
  "markdown-it-py==4.3.0"
  "MarkupSafe==3.0.4"
  "mdurl==0.1.2"
  "pydantic==2.14.4"
  "pydantic_core==2.50.5"
  "Pygments==2.21.0"
  "python-dateutil==2.9.0.post0"
  "rich==15.0.0"
  "ruamel.yaml==0.19.1"
  "ruff==0.17.6"
  "shellingham==1.5.4"
  "six==1.17.0"
  "typer==0.27.3"
  "typing-inspection==0.4.5"
  "typing_extensions==4.16.0"
)
EXPECTED="$(printf '%s\n' "${PINS[@]}")"
if [[ ! -f "$VENV/.installed" ]] || [[ "$(cat "$VENV/.installed")" != "$EXPECTED" ]] \
    || ! "$VENV/bin/openapi-python-client" --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
  printf '%s\n' "${PINS[@]}" >"$VENV/.installed"
  echo "$("$VENV/bin/openapi-python-client" --version) installed in $VENV"
fi
