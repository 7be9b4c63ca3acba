"""The multi-instance proof on one machine: PostgreSQL, Redis, two `moksori serve` instances
behind nginx (round-robin) and `moksori worker`, all real processes on loopback (see
moksori/bench/cluster.py for what each check does). Prints the table of what held.

    .venv/bin/python benchmarks/cluster.py [--keep DIR]

Needs Debian's postgresql, redis-server and nginx (see .ci/run). Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moksori.bench.cluster import format_table, run_proof


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="use (and keep) this folder as the shared storage root, with the logs")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    checks = run_proof(args.keep, progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True))
    print(format_table(checks))
    return 0 if all(check.held for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
