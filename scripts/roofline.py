#!/usr/bin/env python3
"""Training steps as a fraction of this machine's own FMA peak, measured in the same run.

    python3 scripts/roofline.py [CHECKOUT] [--rounds 3] [--filter REGEX] [--features F] [--isa avx512|avx2]

Builds the `step` benchmark of CHECKOUT (default: this one), then, round after round, runs
its `peak` group (a tight FMA loop on 1 thread and on every core; `benches/common/peak.rs`)
and the step benchmarks matching REGEX back to back. Each step's GFLOP/s (818,176 flops per
sample for the 784-256-10 network: 2·N·(2·784·256 + 3·256·10)) is divided by the highest
reading of the peak in the run, on as many threads as the step uses (every core) and of the
same scalar type: the peak is what the machine can do, and a busy host can only lower a
reading of it (dividing by each round's own reading gave fractions above 1 on an AMD EPYC
whose peak read 167 in one round and 225 in the next). The peak is the widest vectors the CPU
has (AVX-512, else AVX2), or `--isa`'s. What is printed is the median over rounds and the
range. With `--isa avx2` the build also leaves out the default
feature `avx512`, so that its products run the `gemm` crate's AVX2 kernels, as on a CPU
without AVX-512. Single runs on a noisy host vary by ±30%; the ratio of two measurements a few
seconds apart varies much less. Not run by CI.
"""
import argparse, os, re, statistics, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab import bench_binary, cpu_name, run  # noqa: E402

FLOPS_PER_SAMPLE = 2 * (2 * 784 * 256 + 3 * 256 * 10)
STEPS = r"mnist_f32/(train_step|bare_step_products)/(128|42000)$|mnist_f64/train_step/128$|mnist_real/"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkout", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter", default=STEPS, help="step benchmarks to measure (criterion ids, regex)")
    ap.add_argument("--features", default="", help="cargo features of the build (e.g. rayon)")
    ap.add_argument("--isa", choices=["avx512", "avx2"],
                    help="the peak to divide by (default: the widest); avx2 also builds without AVX-512 kernels")
    args = ap.parse_args()
    binary = bench_binary(args.checkout, args.features, args.isa)
    cores = os.cpu_count()
    gflops, peaks, scalars = {}, {}, {}
    for r in range(args.rounds):
        peak = run(binary, "^peak/", throughput=True)
        steps = run(binary, args.filter)
        isa = args.isa or ("avx512" if any("avx512" in k for k in peak) else "avx2")
        for scalar in ("f32", "f64"):
            reference = peak.get(f"peak/{scalar}_{isa}/{cores}")
            if reference is None:
                sys.exit(f"no peak/{scalar}_{isa}/{cores} in this run: does the CPU have {isa}?")
            peaks.setdefault(f"{scalar}_{isa} x{cores}", []).append(reference / 1e9)
        for name, seconds in sorted(steps.items()):
            m = re.search(r"/(\d+)$", name)
            if not m:
                continue
            scalars[name] = f"{'f64' if 'f64' in name else 'f32'}_{isa} x{cores}"
            gflops.setdefault(name, []).append(FLOPS_PER_SAMPLE * int(m.group(1)) / seconds / 1e9)
        print(f"round {r + 1}/{args.rounds}: peak " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in sorted(peaks.items()))
              + " GFLOP/s; " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in sorted(gflops.items())), file=sys.stderr)
    fractions = {name: [g / max(peaks[scalars[name]]) for g in v] for name, v in gflops.items()}
    print(f"CPU: {cpu_name()}; {cores} threads; {args.rounds} rounds; build {args.checkout}"
          + (f" (features: {args.features})" if args.features else "")
          + (" (AVX2 kernels: no feature avx512)" if args.isa == "avx2" else ""))
    for name, v in sorted(peaks.items()):
        print(f"peak {name:<30} {max(v):8.1f} GFLOP/s, the highest of {len(v)} readings (median {statistics.median(v):.1f}, lowest {min(v):.1f})")
    print(f"{'benchmark':<48} {'GFLOP/s':>8} {'of peak':>8} {'min':>6} {'max':>6}")
    for name in sorted(fractions):
        f = fractions[name]
        print(f"{name:<48} {statistics.median(gflops[name]):8.1f} {statistics.median(f):8.3f} {min(f):6.3f} {max(f):6.3f}")


if __name__ == "__main__":
    main()
