#!/usr/bin/env python3
"""Interleaved A/B comparison of the criterion benchmarks of two builds of this crate.

    python3 scripts/ab.py BASE_DIR NEW_DIR [--rounds 5] [--filter REGEX]
    python3 scripts/ab.py DIR --over BENCHMARK [--rounds 5] [--filter REGEX]

`--isa avx2` builds both without the default feature `avx512` (the products on AVX2 kernels);
`--new-isa avx2` only B, so that one checkout can be run against itself on the two kernel sets
(`python3 scripts/ab.py . . --new-isa avx2`: which kernels suit this CPU).

BASE_DIR and NEW_DIR are checkouts (e.g. `git worktree add /tmp/base <commit>`), each built
with its own cargo features if given (`--new-features rayon` compares the crate's own thread team
with rayon in the same code). Each is built
with `cargo bench --no-run`; then, round after round, the `step` benchmark binary of A runs,
then B's (order alternating between rounds), on the benchmarks matching REGEX. Single runs on a
noisy host vary by ±30%; what is printed is, per benchmark, the median over rounds of the
ratio B/A of the two runs of the same round, with the lowest and highest ratio.

With `--over BENCHMARK` and one checkout, the ratios are within each run instead: every
benchmark's time over BENCHMARK's in the same run, median and range over the rounds (issue 11
asks for Adam's step within 5% of elementwise RMSprop's "in the same run":
`--over mnist_f32/train_step_elementwise_rmsprop/128 --filter 'mnist_f32/train_step_.*/128$'`).
Not run by CI.
"""
import argparse, json, os, re, statistics, subprocess, sys, tomllib

UNITS = {"ps": 1e-12, "ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
ELEMENT_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def cargo_features(checkout, features, isa=None):
    """Cargo's feature arguments for a build of `checkout` with `features` whose matrix products
    run `isa`'s kernels: for "avx2", without the default feature `avx512` (the `gemm` crate's
    AVX-512 kernels), the checkout's other default features (from its Cargo.toml) kept."""
    if isa == "avx2":
        with open(os.path.join(checkout, "Cargo.toml"), "rb") as f:
            defaults = tomllib.load(f)["features"]["default"]
        wanted = ",".join(f for f in [*defaults, *features.split(",")] if f and f != "avx512")
        return ["--no-default-features", "--features", wanted]
    return ["--features", features] if features else []


def built_executable(checkout, cargo_args, target):
    """Builds with `cargo <cargo_args>` in `checkout` and returns the path cargo reports for
    the executable of `target`. Two builds of one checkout with other features (e.g. AVX-512
    against AVX2 kernels) are two binaries side by side, and the newest file is not always the
    one just asked for: cargo leaves an up-to-date binary untouched."""
    out = subprocess.run(["cargo", *cargo_args, "--quiet", "--message-format=json"], cwd=checkout, check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == target \
                and message.get("executable"):
            return message["executable"]
    sys.exit(f"cargo {' '.join(cargo_args)} built no executable {target} in {checkout}")


def bench_binary(checkout, features, isa=None):
    """The `step` benchmark binary of `checkout` built with `features` on `isa`'s kernels."""
    return built_executable(checkout, ["bench", "--no-run", "--bench", "step",
                                       *cargo_features(checkout, features, isa)], "step")


def run(binary, pattern, throughput=False):
    """{benchmark id: median time in seconds} from one criterion run; with `throughput`, the
    median throughput in elements per second instead (GFLOP/s·1e9 for the `peak` group)."""
    out = subprocess.run([binary, "--bench", "--noplot", pattern], capture_output=True, text=True,
                         check=True).stdout
    values, name = {}, None
    field = r"thrpt:\s+\[\S+ \S+ (\S+) (\S+)elem/s" if throughput else r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]"
    scale = ELEMENT_UNITS if throughput else UNITS
    for line in out.splitlines():
        m = re.match(r"^([\w/.\-]+)(\s+time:.*)?$", line)
        if m and not line.startswith(("Benchmarking", "Found")):
            name = m.group(1)
        t = re.search(field, line)
        # The first match after a name is this run's; criterion's "change" lines come later.
        if t and name and name not in values:
            values[name] = float(t.group(1)) * scale[t.group(2)]
    return values


def cpu_name():
    """The CPU's model name, as every printed figure names it."""
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")


def within(checkout, over, rounds, pattern, features, isa):
    """Each benchmark's time over `over`'s, in the same run, for `rounds` runs of one build."""
    binary = bench_binary(checkout, features, isa)
    ratios, seen = {}, {}
    for r in range(rounds):
        got = run(binary, pattern)
        if over not in got:
            sys.exit(f"{over} is not among the benchmarks matching {pattern!r}: {sorted(got)}")
        for name, t in got.items():
            ratios.setdefault(name, []).append(t / got[over])
            seen.setdefault(name, []).append(t)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {got[n] / got[over]:.3f}" for n in sorted(got)), file=sys.stderr)
    kernels = " (AVX2 kernels: no feature avx512)" if isa == "avx2" else ""
    print(f"CPU: {cpu_name()}; {rounds} runs of {checkout}{kernels}; each time over {over}'s in the same run")
    print(f"{'benchmark':<48} {'median':>12} {'ratio median':>13} {'min':>6} {'max':>6}")
    for name in sorted(ratios):
        rs = ratios[name]
        print(f"{name:<48} {statistics.median(seen[name]) * 1e6:>10.1f}µs {statistics.median(rs):>13.3f} "
              f"{min(rs):>6.3f} {max(rs):>6.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("new", nargs="?", help="the second checkout (not with --over)")
    ap.add_argument("--over", help="with one checkout: ratios to this benchmark within each run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--filter", default=r"mnist_f32/train_step/(128|42000)$|predict_one_image")
    ap.add_argument("--base-features", default="", help="cargo features of build A (e.g. rayon)")
    ap.add_argument("--new-features", default="", help="cargo features of build B")
    ap.add_argument("--isa", choices=["avx2"], help="both builds without AVX-512 kernels (no feature avx512)")
    ap.add_argument("--base-isa", choices=["avx2"], help="build A only without AVX-512 kernels")
    ap.add_argument("--new-isa", choices=["avx2"], help="build B only without AVX-512 kernels")
    args = ap.parse_args()
    if (args.over is None) == (args.new is None):
        ap.error("give two checkouts, or one checkout and --over BENCHMARK")
    if args.over:
        return within(args.base, args.over, args.rounds, args.filter, args.base_features, args.isa)
    isas = {"A": args.base_isa or args.isa, "B": args.new_isa or args.isa}
    binaries = {"A": bench_binary(args.base, args.base_features, isas["A"]),
                "B": bench_binary(args.new, args.new_features, isas["B"])}
    ratios, seen = {}, {"A": {}, "B": {}}
    for r in range(args.rounds):
        order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
        got = {k: run(binaries[k], args.filter) for k in order}
        for name in got["A"].keys() & got["B"].keys():
            ratios.setdefault(name, []).append(got["B"][name] / got["A"][name])
            for k in "AB":
                seen[k].setdefault(name, []).append(got[k][name])
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {got['A'][n] * 1e6:.1f}/{got['B'][n] * 1e6:.1f} µs" for n in sorted(got["A"])), file=sys.stderr)
    cpu = cpu_name()
    def build(checkout, features, isa):
        return (checkout + (f" (features: {features})" if features else "")
                + (" (AVX2 kernels: no feature avx512)" if isa == "avx2" else ""))
    print(f"CPU: {cpu}; {args.rounds} interleaved rounds; A = {build(args.base, args.base_features, isas['A'])}, "
          f"B = {build(args.new, args.new_features, isas['B'])}")
    print(f"{'benchmark':<48} {'A median':>12} {'B median':>12} {'B/A median':>11} {'min':>6} {'max':>6}")
    for name in sorted(ratios):
        rs = ratios[name]
        a, b = statistics.median(seen["A"][name]), statistics.median(seen["B"][name])
        print(f"{name:<48} {a * 1e6:>10.1f}µs {b * 1e6:>10.1f}µs {statistics.median(rs):>11.3f} "
              f"{min(rs):>6.3f} {max(rs):>6.3f}")


if __name__ == "__main__":
    main()
