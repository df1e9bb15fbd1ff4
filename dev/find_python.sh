#!/usr/bin/env bash
# Prints the command of a Python interpreter of the given minor version (default: the functions' runtime, 3.12),
# or nothing, with the reason on stderr. Tried in order: pythonX.Y on PATH, python3 if it is that version, and an
# interpreter of that version installed by pyenv (whose shims answer only for the versions a project selects).
set -uo pipefail
WANT="${1:-3.12}"
is_wanted() { "$@" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$WANT')" 2>/dev/null; }

for candidate in "python$WANT" python3; do
  if command -v "$candidate" >/dev/null 2>&1 && is_wanted "$candidate"; then
    command -v "$candidate"
    exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  prefix="$(pyenv prefix "$WANT" 2>/dev/null | head -n 1)"
  if [[ -n "$prefix" && -x "$prefix/bin/python$WANT" ]] && is_wanted "$prefix/bin/python$WANT"; then
    echo "$prefix/bin/python$WANT"
    exit 0
  fi
fi
echo "no Python $WANT found (the functions run on python${WANT/./}): install it, e.g. 'pyenv install $WANT', or set PYTHON" >&2
exit 1
