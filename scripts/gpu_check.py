#!/usr/bin/env python3
"""Compare sigmaserve's CUDA source with torch's CUDA randn on a real NVIDIA GPU.

For several seeds, shapes below and above the GPU's thread count T and every dtype, draws twice from
one ``torch.Generator("cuda")`` and one ``sigmaserve.Generator(source="cuda", gpu=<this GPU>)`` and
prints the largest absolute difference, the largest ulp distance and whether the philox offsets
agree. Exits 0 with a message when no CUDA GPU is present; 1 when an offset differs or a
difference exceeds ``--tol`` (the CPU model cannot reproduce ``__sincosf`` bit for bit, so expect
|Δ| of order 1e-6, not 0). Also compares A1111's NV source with the first draw. Runs in well under
two minutes.

    python scripts/gpu_check.py [--tol 1e-5]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def ordered_ints(a: np.ndarray) -> np.ndarray:
    """Map floats to integers whose difference is the ulp distance."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    i = a.view(bits).astype(np.int64)
    top = np.int64(1) << np.int64(8 * a.dtype.itemsize - 1)
    return np.where(i < 0, -(i & (top - 1)), i)


def compare(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, int]:
    if ours.size == 0:
        return 0.0, 0
    diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
    ulp = np.abs(ordered_ints(ours) - ordered_ints(theirs))
    return float(diff.max()), int(ulp.max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu_check: torch is not installed; skipped")
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU available; skipped")
        return 0

    import sigmaserve
    from sigmaserve import noise

    t_start = time.perf_counter()
    props = torch.cuda.get_device_properties(0)
    sms = props.multi_processor_count
    per_sm = props.max_threads_per_multi_processor
    t_max = 256 * sms * (per_sm // 256)
    print(
        f"GPU: {props.name}  SMs={sms}  threads/SM={per_sm}  T={t_max}  torch={torch.__version__}"
    )
    dtypes = {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "float64": torch.float64,
    }
    shapes = [
        (16,),
        (1, 4, 64, 64),
        (2, 4, 128, 128),
        (1, 16, 128, 128),
        (t_max + 1000,),
        (5 * t_max + 17,),
    ]
    seeds = [0, 42, 2**32 + 5, 2**63 - 1]
    failures = 0
    worst = 0.0
    print(
        f"{'seed':>20s} {'shape':>18s} {'dtype':>9s} {'call':>4s} "
        f"{'max|d|':>10s} {'max ulp':>8s} offset"
    )
    for seed in seeds:
        for shape in shapes:
            for name, tdt in dtypes.items():
                g = torch.Generator("cuda").manual_seed(seed)
                ours = sigmaserve.Generator(seed, source="cuda", gpu=(sms, per_sm))
                for call in (1, 2):
                    want = torch.randn(shape, generator=g, device="cuda", dtype=tdt).cpu()
                    got = ours.randn(shape, name)
                    if want.dtype == torch.bfloat16:
                        # bfloat16 arrives as uint16 bit patterns; compare as bits and as floats.
                        got_bits = got.view(np.int16)
                        want_bits = want.view(torch.int16).numpy()
                        d = float(
                            np.abs(
                                noise.to_torch(got, "bfloat16").double().numpy()
                                - want.double().numpy()
                            ).max()
                        )
                        ulp = int(
                            np.abs(
                                ordered_ints(got_bits.view(np.float16))
                                - ordered_ints(want_bits.view(np.float16))
                            ).max()
                        )
                    else:
                        d, ulp = compare(got, want.numpy())
                    offsets_ok = g.get_offset() == ours.offset
                    worst = max(worst, d)
                    bad = (not offsets_ok) or d > args.tol
                    mismatch = f"MISMATCH torch={g.get_offset()} ours={ours.offset}"
                    failures += bad
                    print(
                        f"{seed:>20d} {shape!s:>18s} {name:>9s} {call:>4d} {d:10.3g} {ulp:8d} "
                        f"{'ok' if offsets_ok else mismatch}"
                        f"{'  <-- FAIL' if bad else ''}"
                    )
    # A1111 NV (float64 numpy formula) against the first CUDA draw of SD-sized latents.
    for seed in seeds:
        want = (
            torch.randn(
                (1, 4, 64, 64), generator=torch.Generator("cuda").manual_seed(seed), device="cuda"
            )
            .cpu()
            .numpy()
        )
        got = sigmaserve.randn((1, 4, 64, 64), seed, source="a1111_nv")
        d, ulp = compare(got, want)
        print(f"a1111_nv seed {seed}: max|d| {d:.3g}, max ulp {ulp}")
    elapsed = time.perf_counter() - t_start
    print(f"largest |d| {worst:.3g}; {failures} failing case(s); {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
