#!/usr/bin/env bash
# The demo on a fresh machine: sets up the virtualenv, provisions a local single-node
# OpenSearch, indexes a synthetic 12-host fleet with injected incidents, trains DeepLog from
# the cluster, runs scheduled cycles and prints what it found. Arguments go to `demo`
# (--hosts N, --cycles N, --keep-node).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/bootstrap.sh")"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" -m devtools.demo "$@"
