"""``nox -s bench``: throughput figures, each reported as measured in this one run.

1. The cycle model's kernel benchmark (simcore.cycles.bench): raw unicorn vs
   the C accounting hook, instructions per second and their ratio.
2. The generated MNIST int8 firmware, one full batch per board, through the
   engine with accounting off and on.
3. The silicon suite: measured instruction sequences (STM32H743, RP2350) against
   the model, exact count and mean and worst error per core.
4. Validation wall time: every IRIS combination, and the whole MNIST test set
   (10,000 images) in int8 on all three boards, on all cores; and a check that
   validation never imported TensorFlow.
4. The MNIST int8 sweep on one process, the local pool and Dask LocalClusters of
   2 and 4 workers (samples per second, and distributed against local).

Nothing here asserts a wall-clock limit; the figures are printed for people.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _firmware_throughput() -> None:
    from simcore.boards import load_boards
    from simcore.engine import run_firmware
    from simcore.firmware.build import build_model_firmware
    from simcore.golden.store import load_golden

    golden = load_golden("mnist_cnn")
    print("\nMNIST int8 firmware, one batch through the engine (accounting off / on):")
    for board in sorted(load_boards()):
        build = build_model_firmware("mnist_cnn", "int8", board)
        x = golden.inputs_int8[: build.capacity].tobytes()
        raw = run_firmware(build.elf, board, inputs=x, cycles=False)
        counted = run_firmware(build.elf, board, inputs=x)
        n = counted.instructions or 0
        print(
            f"  {board:<10} {build.capacity} images, {n / 1e6:7.1f} M instructions: "
            f"raw {n / raw.wall_seconds / 1e6:6.1f} M/s, accounted "
            f"{n / counted.wall_seconds / 1e6:6.1f} M/s, ratio "
            f"{raw.wall_seconds / counted.wall_seconds:.2f}"
        )


def _silicon_suite() -> None:
    from simcore.cycles.silicon import CORES, run_suite

    print(
        "\nSilicon suite (measured sequences, cycles per copy; python -m simcore.cycles.silicon):"
    )
    for core in CORES:
        print(f"  {run_suite(core).summary()}")


def _validation(limit: int | None, jobs: int) -> None:
    from simcore.validate import all_combinations, validate_many

    combos = all_combinations()
    iris = [c for c in combos if c.model.startswith("iris")]
    t = time.perf_counter()
    results = validate_many(iris, jobs=jobs)
    iris_s = time.perf_counter() - t
    failed = [r.key for r in results if not r.passed]
    print(
        f"\nAll {len(iris)} IRIS combinations (test splits): {iris_s:.1f} s wall "
        f"(target 10 s: ratio {iris_s / 10:.2f}); failed: {failed or 'none'}"
    )
    mnist = [c for c in combos if c.model == "mnist_cnn" and c.fmt == "int8"]
    t = time.perf_counter()
    results = validate_many(mnist, limit=limit, jobs=jobs, progress=True)
    mnist_s = time.perf_counter() - t
    n = results[0].n_samples if results else 0
    full = mnist_s * 10_000 / max(n, 1)
    scope = "" if n == 10_000 else f", projected {full:.0f} s for 10,000 images"
    print(
        f"MNIST int8, {n} images on {len(mnist)} boards: {mnist_s:.1f} s wall with {jobs} "
        f"jobs{scope} (target 120 s: ratio {full / 120:.2f})"
    )
    for r in results:
        print(
            f"  {r.key:<26} {'PASS' if r.passed else 'FAIL'} {r.exactness:<10} "
            f"{r.cycles_mean:>12,.0f} cycles/inference, emulation {r.emulation_seconds:6.1f} s "
            f"({r.emulation_seconds / max(r.n_samples, 1) * 1e3:.2f} ms/image)"
        )
    print(f"TensorFlow imported by validation: {'tensorflow' in sys.modules}")


def _distributed(limit: int, jobs: int) -> None:
    """The MNIST int8 sweep on 1 process, the local pool, and LocalClusters of 2 and 4."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("\nDask sweep: skipped (simcore[distributed] not installed)")
        return
    from simcore.validate import all_combinations, validate_many

    combos = [c for c in all_combinations() if c.model == "mnist_cnn" and c.fmt == "int8"]
    print(f"\nMNIST int8 sweep, {limit} images on {len(combos)} boards (firmware built):")
    validate_many(combos, limit=1, jobs=1)  # build the firmware outside the timings
    engines: list[tuple[str, int, str | None]] = [
        ("1 process", 1, None),
        (f"local pool, {jobs} processes", jobs, None),
        ("Dask LocalCluster, 2 workers", 2, "local:2"),
        ("Dask LocalCluster, 4 workers", 4, "local:4"),
    ]
    walls: dict[str, float] = {}
    reference: list[tuple[str, float | None]] | None = None
    for name, n_jobs, scheduler in engines:
        t = time.perf_counter()
        results = validate_many(combos, limit=limit, jobs=n_jobs, scheduler=scheduler)
        walls[name] = wall = time.perf_counter() - t
        figures: list[tuple[str, float | None]] = [(r.key, r.cycles_mean) for r in results]
        same = "" if reference is None else ("; same cycles" if figures == reference else
                                              "; CYCLES DIFFER from the 1-process run")  # fmt: skip
        reference = reference or figures
        samples = sum(r.n_samples for r in results)
        print(f"  {name:<32} {wall:6.1f} s wall, {samples / wall:7.1f} samples/s{same}")
    local = walls[f"local pool, {jobs} processes"]
    dask2 = walls["Dask LocalCluster, 2 workers"]
    print(f"  distributed (2 workers) / local pool wall time: {dask2 / local:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simcore.bench", description=__doc__)
    parser.add_argument("--limit", type=int, help="MNIST images (default: all 10,000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-kernel", action="store_true", help="skip the kernel benchmark")
    parser.add_argument(
        "--sweep-limit", type=int, default=1000, help="MNIST images per board in the Dask sweep"
    )
    args = parser.parse_args(argv)
    if not args.skip_kernel:
        from simcore.cycles import bench

        print("Cycle-model kernel benchmark (best of runs, thread CPU time):")
        bench.main()
    _firmware_throughput()
    _silicon_suite()
    _validation(args.limit, args.jobs)
    _distributed(args.sweep_limit, args.jobs)


if __name__ == "__main__":
    main()
