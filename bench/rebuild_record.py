"""Record how long `make checkpoints` took, with what it ran on, beside the checkpoints.

    python bench/rebuild_record.py --started EPOCH_SECONDS --out checkpoints/rebuild.json

`bench/method_at_work.py` prints the minutes as `rebuild_min=…`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--started", type=float, required=True, help="start time, seconds since the epoch")
    parser.add_argument("--out", default="checkpoints/rebuild.json")
    args = parser.parse_args(argv)
    runs = sum(1 for _ in Path(args.out).parent.glob("*/*/*/metrics.json"))  # task/architecture/variant-seed
    record = {"minutes": round((time.time() - args.started) / 60, 1), "runs": runs, "cpus": os.cpu_count(),
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
              "machine": platform.machine(), "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"make checkpoints: {runs} runs in {record['minutes']} min on {record['cpus']} CPUs "
          f"(load average at the end {record['load_average_at_end']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
