#!/usr/bin/env bash
# The whole test suite on a fresh machine: sets up the virtualenv (cached outside the clone),
# then runs pytest. The integration tests provision their own OpenSearch node (Maven fetches
# the distribution into a cache outside the clone on first use). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/bootstrap.sh")"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
"$venv/bin/ruff" check sidecar devtools tests benchmarks
# The layer and dependency contracts in pyproject.toml ([tool.importlinter]).
"$venv/bin/lint-imports" --config "$root/pyproject.toml"
exec "$venv/bin/python" -m pytest "$@"
