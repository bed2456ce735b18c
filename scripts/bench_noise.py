#!/usr/bin/env python3
"""Noise engine benchmark: sigmaserve vs torch.randn (CPU generator) and a numpy NV implementation.

Runs side by side in one process on 16,777,216 float32 values (``--numel`` to change), alternating
the contenders each round so background load hits them alike, and prints a table of medians (and
bests) with ratios. Each contender runs twice: allocating a fresh array (compared with torch.randn
allocating) and filling a reused buffer with ``out=`` (compared with ``torch.randn(out=...)``): a
fresh 64 MB array costs page faults that have nothing to do with the generator. The CPU source's
bits are checked against torch, the NV source's against the numpy formula.

    .venv/bin/python scripts/bench_noise.py [--numel N] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import sigmaserve
from sigmaserve import noise


def numpy_nv(seed: int, n: int, offset: int = 0) -> np.ndarray:
    """AUTOMATIC1111's NV formula (modules/rng_philox.py) restated in plain numpy."""
    seed &= 2**64 - 1
    c0 = np.full(n, offset, dtype=np.uint32)
    c1 = np.zeros(n, dtype=np.uint32)
    c2 = np.arange(n, dtype=np.uint32)
    c3 = np.zeros(n, dtype=np.uint32)
    k0 = np.full(n, seed & 0xFFFFFFFF, dtype=np.uint32)
    k1 = np.full(n, seed >> 32, dtype=np.uint32)
    m0 = np.uint64(0xD2511F53)
    m1 = np.uint64(0xCD9E8D57)
    for r in range(10):
        p0 = m0 * c0.astype(np.uint64)
        p1 = m1 * c2.astype(np.uint64)
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)).astype(np.uint32) ^ c1 ^ k0,
            p1.astype(np.uint32),
            (p0 >> np.uint64(32)).astype(np.uint32) ^ c3 ^ k1,
            p0.astype(np.uint32),
        )
        if r < 9:
            k0 = k0 + np.uint32(0x9E3779B9)
            k1 = k1 + np.uint32(0xBB67AE85)
    two_pow32_inv = np.array([2.3283064e-10], dtype=np.float32)
    two_pow32_inv_2pi = np.array([2.3283064e-10 * 6.2831855], dtype=np.float32)
    u = c0 * two_pow32_inv + two_pow32_inv / 2
    v = c1 * two_pow32_inv_2pi + two_pow32_inv_2pi / 2
    s = np.sqrt(-2.0 * np.log(u))
    return (s * np.sin(v)).astype(np.float32)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numel", type=int, default=16_777_216)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--gpu", default="h100", help="GPU preset for the second CUDA-source row")
    ap.add_argument("--skip-numpy", action="store_true", help="skip the (slow) numpy NV baseline")
    ap.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64", "float16", "bfloat16"],
        help="the noise dtype (the numpy NV baseline runs for float32 only)",
    )
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args()

    import torch

    n = args.numel
    seed = args.seed
    dt = args.dtype
    tdt = getattr(torch, dt)
    torch_buffer = torch.empty(n, dtype=tdt)
    buffer = np.empty(n, np.uint16 if dt == "bfloat16" else dt)

    def torch_randn(**kw: object) -> torch.Tensor:
        return torch.randn(n, generator=torch.Generator("cpu").manual_seed(seed), dtype=tdt, **kw)

    def ours(**kw: object) -> object:
        return sigmaserve.randn(n, seed, dtype=dt, **kw)

    # name -> (call, whether it fills a reused buffer). Rows that allocate compare with
    # torch.randn allocating; rows that fill a buffer with torch.randn(out=...).
    contenders: dict[str, tuple[Callable[[], object], bool]] = {
        "torch.randn (CPU generator)": (torch_randn, False),
        "sigmaserve cpu": (ours, False),
        "sigmaserve cuda (unlimited grid)": (lambda: ours(source="cuda"), False),
        f"sigmaserve cuda (gpu={args.gpu})": (lambda: ours(source="cuda", gpu=args.gpu), False),
        "sigmaserve a1111_nv": (lambda: ours(source="a1111_nv"), False),
        "torch.randn(out=buffer)": (lambda: torch_randn(out=torch_buffer), True),
        "sigmaserve cpu (out=buffer)": (lambda: ours(out=buffer), True),
        f"sigmaserve cuda (gpu={args.gpu}, out=buffer)": (
            lambda: ours(source="cuda", gpu=args.gpu, out=buffer),
            True,
        ),
    }
    # Warm up (thread pool, page cache) and check the bits once.
    theirs = torch_randn()
    theirs_bits = (theirs.view(torch.int16) if dt == "bfloat16" else theirs).numpy().tobytes()
    cpu_identical = np.asarray(ours()).tobytes() == theirs_bits
    ours(out=buffer)
    cpu_identical &= buffer.tobytes() == theirs_bits
    for fn, _ in contenders.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, (fn, _) in contenders.items():
            elapsed, _ = timed(fn)
            times[name].append(elapsed)
    numpy_name = "numpy NV formula (A1111, float64)"
    if not args.skip_numpy and dt == "float32":
        elapsed, ref = timed(lambda: numpy_nv(seed, n))
        times[numpy_name] = [elapsed]
        nv = sigmaserve.randn(n, seed, source="a1111_nv")
        nv_identical = nv.tobytes() == np.asarray(ref).tobytes()
    else:
        nv_identical = None

    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    numpy_t = med.get(numpy_name)
    print(
        f"numel={n:,} {dt}  rounds={args.rounds}  cpus={os.cpu_count()}  "
        f"simd={noise.simd_isa()}  torch={torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()})  {platform.processor() or platform.machine()}"
    )
    header = (
        f"{'contender':46s} {'median ms':>10s} {'best ms':>8s} {'Mvalues/s':>10s} "
        f"{'(best)':>7s} {'vs torch':>9s} {'(best)':>7s} {'vs numpy NV':>12s}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name, t in med.items():
        reused = contenders[name][1] if name in contenders else False
        baseline = "torch.randn(out=buffer)" if reused else "torch.randn (CPU generator)"
        vs_torch = med[baseline] / t
        vs_torch_best = best[baseline] / best[name]
        vs_numpy = (numpy_t / t) if numpy_t else float("nan")
        print(
            f"{name:46s} {t * 1e3:10.2f} {best[name] * 1e3:8.2f} {n / t / 1e6:10.1f} "
            f"{n / best[name] / 1e6:7.0f} {vs_torch:8.2f}x {vs_torch_best:6.2f}x {vs_numpy:11.1f}x"
        )
        rows.append(
            {
                "name": name,
                "reused_buffer": reused,
                "median_s": t,
                "best_s": best[name],
                "values_per_s": n / t,
                "vs_torch": vs_torch,
                "vs_torch_best": vs_torch_best,
                "vs_numpy_nv": vs_numpy,
            }
        )
    print("vs torch: out=buffer rows against torch.randn(out=buffer), others against torch.randn;")
    print("(best): the fastest round of each, the figure background load moves least")
    print(
        f"bit-identical: cpu source == torch: {cpu_identical}; a1111_nv == numpy NV: {nv_identical}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "numel": n,
                    "rows": rows,
                    "cpu_identical": cpu_identical,
                    "nv_identical": nv_identical,
                },
                f,
                indent=2,
            )
    return 0 if cpu_identical and nv_identical is not False else 1


if __name__ == "__main__":
    raise SystemExit(main())
