"""`python -m devtools.demo`: provision a local OpenSearch and run the end-to-end demo
(scripts/demo.sh). Dev tooling: it is not part of the installed package."""

from __future__ import annotations

import argparse
import sys

from devtools.demo.runner import run_demo
from sidecar.app.logging import configure_logging
from sidecar.app.main import exit_code
from sidecar.app.wiring import load_settings
from sidecar.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="provision a local OpenSearch and run an end-to-end demo",
    )
    parser.add_argument("--hosts", type=int, default=12)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--keep-node", action="store_true", help="leave OpenSearch running")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        return exit_code(exc)
    configure_logging(settings.log_level, settings.log_format)
    return run_demo(hosts=args.hosts, cycles=args.cycles, keep_node=args.keep_node)


if __name__ == "__main__":
    sys.exit(main())
