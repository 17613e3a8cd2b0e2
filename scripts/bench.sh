#!/usr/bin/env bash
# Runs a benchmark script from benchmarks/ in the project's virtualenv:
#   ./scripts/bench.sh hdfs [args]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/bootstrap.sh")"
name="$1"; shift
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" "benchmarks/$name.py" "$@"
