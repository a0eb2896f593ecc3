#!/usr/bin/env python3
"""This crate's training steps beside numpy's and PyTorch's, measured in the same run.

    python3 scripts/peers.py [--rounds 3] [--threads 2] [--isa avx2]

Each round times, back to back, on the real MNIST files in data/mnist:
  - this crate: the `mnist_real` criterion benchmarks (`benches/step.rs`): the original
    recipe's full-batch step (first 42000 images, 784-256-10 with no output bias, L2 1e-6,
    per-tensor RMSprop) and the default recipe's step at batch 128 (He init, output bias,
    elementwise RMSprop); and one epoch of the default recipe from the `mnist` example
    (60000 images, batch 128, reshuffled; the example's own training time);
  - numpy (if installed): the original recipe's full-batch iteration, written as the original
    numpy code does it (`X @ W0`, one sample per row), in float32, on as many BLAS threads;
  - PyTorch (if installed): the same two steps and the same epoch with `nn.Linear`, ReLU,
    `CrossEntropyLoss` and `torch.optim.RMSprop` (elementwise, lr 2e-3, PyTorch's defaults
    otherwise), float32, `torch.set_num_threads(threads)`; the full batch as one step.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some hosts set for old OpenBLAS builds and which
pin numpy to a slower kernel, are unset for the run; the line naming the CPU names the BLAS
kernel numpy ran (with threadpoolctl installed). With `--isa avx2`, every side runs AVX2
kernels on a CPU that has AVX-512, as a stand-in for an AVX2-only CPU: the crate is built
without its default feature `avx512`, numpy's OpenBLAS is pinned to its Haswell kernels
(OPENBLAS_CORETYPE=Haswell) and PyTorch to AVX2 (ATEN_CPU_CAPABILITY=avx2, and MKL's and
oneDNN's instruction sets capped at AVX2). Timings are medians of repeated steps after a
warm-up; the printed ratios (crate ÷ peer) are the median over rounds of each round's ratio,
with their range. The host's single runs vary by ±30%; the ratio of measurements seconds
apart varies much less. Not run by CI: numpy and PyTorch are not dependencies of this crate
(`pip install numpy torch`).
"""
import argparse, gzip, json, math, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from ab import bench_binary, built_executable, cargo_features, cpu_name, run  # noqa: E402


def load_mnist(limit):
    import numpy as np

    with gzip.open(os.path.join(ROOT, "data/mnist/train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:limit]
    with gzip.open(os.path.join(ROOT, "data/mnist/train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:limit]
    return (images / 255.0).astype(np.float32), labels.astype(np.int64)


def median_time(step, repeats, warm_up=2):
    for _ in range(warm_up):
        step()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def numpy_seed_step(x, y):
    """The original recipe's iteration: a = ReLU(X·W0 + b), softmax(a·W1), mean cross-entropy
    plus alpha/2·(‖W0‖² + ‖W1‖²), per-tensor RMSprop (η 0.5, γ 0.99, ε 1e-3)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = x.shape[0]
    w0 = (0.1 * rng.standard_normal((784, 256))).astype(np.float32)
    b = rng.standard_normal(256).astype(np.float32)
    w1 = (0.1 * rng.standard_normal((256, 10))).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[y]
    g = {"w0": 1.0, "b": 1.0, "w1": 1.0}
    alpha, eta, gamma, eps = 1e-6, 0.5, 0.99, 1e-3

    def step():
        nonlocal w0, b, w1
        z1 = x @ w0 + b
        a = np.maximum(z1, 0)
        z2 = a @ w1
        z2 -= z2.max(axis=1, keepdims=True)
        p = np.exp(z2)
        p /= p.sum(axis=1, keepdims=True)
        d2 = (p - onehot) / n
        dw1 = a.T @ d2 + alpha * w1
        d1 = (d2 @ w1.T) * (z1 > 0)
        dw0 = x.T @ d1 + alpha * w0
        db = d1.sum(axis=0)
        for name, grad in (("w0", dw0), ("b", db), ("w1", dw1)):
            g[name] = gamma * g[name] + (1 - gamma) * float(np.sum(grad * grad))
        # Python floats as step sizes: a NumPy float64 scalar would turn the weights into
        # float64 (NumPy 2's promotion rules), and every later product with them.
        w0 = w0 - eta / math.sqrt(g["w0"] + eps) * dw0
        b = b - eta / math.sqrt(g["b"] + eps) * db
        w1 = w1 - eta / math.sqrt(g["w1"] + eps) * dw1
        assert w0.dtype == b.dtype == w1.dtype == np.float32

    return step


def torch_steps(x, y, threads):
    """PyTorch's step at batch 128 and on the full 42000, and its epoch over 60000 images."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def model():
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        for layer in (net[0], net[2]):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            torch.nn.init.zeros_(layer.bias)
        return net, torch.optim.RMSprop(net.parameters(), lr=2e-3)

    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def stepper(batch):
        net, opt = model()
        # As the crate's benchmarks: the first 64 batches in turn, or the first 42000 images.
        starts = range(0, 64 * batch, batch) if batch < 42000 else [0]
        batches = [(xt[i:i + batch], yt[i:i + batch]) for i in starts]
        k = 0

        def step():
            nonlocal k
            xb, yb = batches[k % len(batches)]
            k += 1
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xb), yb).backward()
            opt.step()

        return step

    def epoch():
        net, opt = model()
        order = torch.randperm(xt.shape[0])
        t = time.perf_counter()
        for i in range(0, xt.shape[0], 128):
            idx = order[i:i + 128]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        return time.perf_counter() - t

    return stepper(128), stepper(42000), epoch


def blas_kernel():
    """numpy's BLAS library, version and the kernel it picked for this CPU (e.g. OpenBLAS
    0.3.31, SkylakeX), from threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see it)"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not blas:
        return "none loaded"
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')})" for i in blas)


def crate_epoch(isa):
    """One epoch of the default recipe, the example's own training time (seconds)."""
    example = built_executable(ROOT, ["build", "--release", "--example", "mnist", *cargo_features(ROOT, "", isa)],
                               "mnist")
    out = os.path.join(ROOT, "target/peers")
    metrics = os.path.join(out, "metrics.json")
    subprocess.run([example, "--epochs", "1", "--out", out,
                    "--metrics", metrics], capture_output=True, check=True)
    with open(metrics) as f:
        return json.load(f)["train_seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--isa", choices=["avx2"], help="every side on AVX2 kernels (an AVX2-only CPU's stand-in)")
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    # Some hosts set these for old OpenBLAS builds that misdetect their CPU; they pin a current
    # numpy to a slower kernel. The peers are measured as they run by default, so both go
    # (before numpy loads OpenBLAS), and the kernel OpenBLAS then picks is printed.
    dropped = [var for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.pop(var, None) is not None]
    if args.isa == "avx2":
        # Set before numpy and torch load their libraries, which read them once.
        os.environ.update(OPENBLAS_CORETYPE="Haswell", ATEN_CPU_CAPABILITY="avx2",
                          MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2")
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.exit("numpy is needed to load the data (pip install numpy)")
    blas = blas_kernel()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("PyTorch not installed: its columns are skipped", file=sys.stderr)

    binary = bench_binary(ROOT, "", args.isa)
    x60, y60 = load_mnist(60000)
    x42, y42 = x60[:42000], y60[:42000]
    ratios, seen = {}, {}

    def record(name, value):
        seen.setdefault(name, []).append(value)

    for r in range(args.rounds):
        ours = run(binary, "^mnist_real/")
        full, small = ours["mnist_real/train_step_seed_recipe/42000"], ours["mnist_real/train_step_default_recipe/128"]
        epoch = crate_epoch(args.isa)
        record("crate full-batch step (seed recipe)", full)
        record("crate step, batch 128 (default recipe)", small)
        record("crate epoch (default recipe)", epoch)
        np_full = median_time(numpy_seed_step(x42, y42), 5)
        record("numpy full-batch step (seed recipe)", np_full)
        ratios.setdefault("crate ÷ numpy, full-batch step", []).append(full / np_full)
        if have_torch:
            t_small, t_full, t_epoch = torch_steps(x60, y60, args.threads)
            ts, tf, te = median_time(t_small, 200, warm_up=20), median_time(t_full, 5), t_epoch()
            record("PyTorch step, batch 128", ts)
            record("PyTorch full-batch step", tf)
            record("PyTorch epoch", te)
            ratios.setdefault("crate ÷ PyTorch, step at batch 128", []).append(small / ts)
            ratios.setdefault("crate ÷ PyTorch, full-batch step", []).append(full / tf)
            ratios.setdefault("crate ÷ PyTorch, epoch", []).append(epoch / te)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in ratios.items()), file=sys.stderr)

    cpu = cpu_name()
    versions = f"numpy {numpy.__version__}" + (f", PyTorch {torch.__version__}" if have_torch else "")
    torch_isa = f"; PyTorch's kernels: {torch.backends.cpu.get_cpu_capability()}" if have_torch else ""
    crate_isa = "; the crate's products: AVX2 kernels (no feature avx512)" if args.isa == "avx2" else ""
    print(f"CPU: {cpu}; {args.threads} threads; {args.rounds} rounds; {versions}; numpy's BLAS: {blas}"
          + (f" (unset for this run: {', '.join(dropped)})" if dropped and args.isa != "avx2" else "")
          + torch_isa + crate_isa)
    for name, v in seen.items():
        print(f"{name:<44} median {statistics.median(v) * 1e3:10.3f} ms  (range {min(v) * 1e3:.3f}-{max(v) * 1e3:.3f})")
    for name, v in ratios.items():
        print(f"{name:<44} median {statistics.median(v):6.3f}  (range {min(v):.3f}-{max(v):.3f})")


if __name__ == "__main__":
    main()
