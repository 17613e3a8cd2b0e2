#!/usr/bin/env bash
# Prints the path of a virtualenv holding the project's dependencies, creating it first if
# needed. The virtualenv lives in a cache outside the clone, keyed by a hash of the dependency
# list in pyproject.toml: repeated runs reuse it, a fresh machine installs everything.
# The project itself is not installed into it (several clones may share one virtualenv);
# the scripts put the clone on PYTHONPATH instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SIDECAR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/log-anomaly-sidecar}"

python_bin=""
for candidate in python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    python_bin="$(command -v "$candidate")"; break
  fi
done
if [ -z "$python_bin" ]; then
  echo "bootstrap: Python 3.11 is required (python3.11 or python3 on PATH)" >&2
  exit 1
fi

requirements="$("$python_bin" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
deps = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("test", []))
print("\n".join(deps))
PY
)"
key="$(printf '%s\n%s\n' "$("$python_bin" -V 2>&1)" "$requirements" | sha256sum | cut -c1-16)"
venv="$cache/venv-$key"

if [ ! -f "$venv/.complete" ]; then
  mkdir -p "$cache"
  # Two first runs at once (a test run and a benchmark) would delete each other's half-built
  # virtualenv: the second waits for the first, then finds it complete.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.bootstrap.lock"
    flock 9
  fi
fi
if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv (first run downloads torch, a few GB)" >&2
  rm -rf "$venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  # shellcheck disable=SC2086
  printf '%s\n' "$requirements" > "$venv/requirements.txt"
  "$venv/bin/python" -m pip install --quiet -r "$venv/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv"
