"""How fast `data validate` decodes a dataset's images, one thread against one per CPU.

Writes N photo-sized JPEGs (default 400 at 1024 x 768, quality 85, about 100-200 KB each: smooth
gradients with sensor-like noise, decoding like real photos) and a CSV in a temporary folder,
then runs `validate` (every image decoded in full, as training loads it) with 1 thread and with
one thread per CPU, interleaved over rounds so that other processes' load hits both alike; the
median round is reported. The load average is printed so the figures can be read in context.

    python bench/validate_images.py [--n 400] [--size 1024x768] [--rounds 3]

Last line: `images_per_s_1=<one thread> images_per_s_all=<all CPUs> cpus=<n> speedup=<ratio>`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mmaux.data.csvdata import CsvDatasetSpec, validate


def write_dataset(folder: Path, n: int, size: tuple[int, int]) -> CsvDatasetSpec:
    rng = np.random.default_rng(0)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    (folder / "img").mkdir()
    for i in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xs / width * 255 * a, ys / height * 255 * b,
                         (xs + ys) / (width + height) * 255 * c], axis=-1)
        pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"{i}.jpg", quality=85)
    splits = ["train", "val", "test"]
    lines = ["tweet_id,text,label,split"] + [f"{i},post {i},{i % 2},{splits[i % 3]}" for i in range(n)]
    (folder / "posts.csv").write_text("\n".join(lines) + "\n")
    return CsvDatasetSpec(csv=str(folder / "posts.csv"), image_root=str(folder),
                          image_template="img/{id}.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="images (default 400)")
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT (default 1024x768)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_dataset(Path(tmp), args.n, size)
        mb = sum(p.stat().st_size for p in (Path(tmp) / "img").iterdir()) / 2**20
        print(f"{args.n} JPEGs of {size[0]}x{size[1]}, {mb:.1f} MiB; {cpus} CPUs; "
              f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        times: dict[int, list[float]] = {1: [], cpus: []}
        for _ in range(args.rounds):
            for workers in times:
                started = time.perf_counter()
                report = validate(spec, workers=workers, cache=False)
                times[workers].append(time.perf_counter() - started)
                assert not report.bad_rows, report.format()
    rate = {w: args.n / statistics.median(t) for w, t in times.items()}
    for workers, value in rate.items():
        print(f"  {workers} thread(s): {value:7.1f} images/s (median of {args.rounds})")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"images_per_s_1={rate[1]:.1f} images_per_s_all={rate[cpus]:.1f} cpus={cpus} "
          f"speedup={rate[cpus] / rate[1]:.2f}")


if __name__ == "__main__":
    main()
