"""Entry point for benchmark phases that need a process of their own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pjai.bench.peer import run_peer
from pjai.bench.store import Workload, load


def main(argv: list[str]) -> None:
    """Run the ``load``, ``peer`` or ``ingest`` phase with JSON arguments; print JSON
    results."""
    task, args = argv[0], json.loads(argv[1])
    if task == "load":
        workload = Workload(**args["workload"])
        result = load(Path(args["path"]), workload, args["durability"], args["sync"])
        print(json.dumps(result))
    elif task == "peer":
        path = Path(args.pop("path"))
        print(json.dumps(run_peer(args.pop("peer"), path, **args)))
    elif task == "ingest":
        from pjai.bench.ingest import ingest  # the other phases' RSS stays without the app

        print(json.dumps(ingest(Path(args["path"]), args["batch"])))
    else:
        raise SystemExit(f"unknown benchmark task {task!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
