"""Render N synthetic hands-and-object samples to disk (the training/test data of the default model).

    python -m hand_object_pose.tools.generate_synthetic OUT --count 10000 --seed 1 [--size 256x256] [--workers 2]

Samples are deterministic in (seed, index): a held-out test set is the same command with another
seed. Prints the generation speed at the end. The hands are the licence-free stand-in (NOT MANO).
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

_GENERATOR = None


def _init_worker(size) -> None:
    global _GENERATOR
    import torch

    from hand_object_pose.synthetic.scene import SceneConfig, SceneGenerator

    torch.set_num_threads(1)  # one renderer per process scales better than threads on small crops
    _GENERATOR = SceneGenerator(SceneConfig(image_size=size))


def _render(job) -> int:
    from hand_object_pose.datasets.synthetic import write_sample

    out, seed, index = job
    write_sample(out, index, _GENERATOR.sample(seed, index))
    return index


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 256x256; got {text!r}") from None
    if width < 32 or height < 32:
        raise argparse.ArgumentTypeError(f"image size must be at least 32x32; got {text!r}")
    return width, height


def generate(out: str, count: int, seed: int, size=(256, 256), workers: int = 1, progress: bool = True) -> float:
    """Write `count` samples under `out`; returns samples per second."""
    from hand_object_pose.synthetic.objects import default_objects
    from hand_object_pose.datasets.synthetic import write_meta
    from hand_object_pose.synthetic.scene import GENERATOR_VERSION

    write_meta(out, seed, count, size, default_objects(), GENERATOR_VERSION)
    jobs = [(out, seed, i) for i in range(count)]
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=count, unit="sample", file=sys.stderr)
        except ImportError:
            pass
    start = time.perf_counter()
    if workers <= 1:
        _init_worker(size)
        for job in jobs:
            _render(job)
            if bar:
                bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (size,)) as pool:
            for _ in pool.imap_unordered(_render, jobs, chunksize=8):
                if bar:
                    bar.update()
    if bar:
        bar.close()
    return count / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hand_object_pose.tools.generate_synthetic",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=_size, default=(256, 256), help="WIDTHxHEIGHT (default 256x256)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be >= 1")
    rate = generate(args.out, args.count, args.seed, args.size, args.workers)
    print(f"wrote {args.count} samples to {args.out} at {rate:.1f} samples/s ({args.workers} worker(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
