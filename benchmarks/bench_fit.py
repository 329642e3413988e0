"""Training and prediction speed of mlp against scikit-learn and PyTorch, in one run.

All peers train the same network on the same float32 data with Adam (lr 1e-3), the same batch
size, tol=0 and the same number of epochs; PyTorch (when installed) runs eager mode with a random
permutation per epoch. Each figure is the median of --repeats runs in this process, measured in
--rounds interleaved rounds (the range over the rounds is shown). A fit of one epoch is timed
too, so that the per-epoch cost and the fixed cost of a fit are reported apart. The script
also measures numpy's 1024x1024 float32 matmul in the same run, so GFLOP/s can be read as a
fraction of what this machine's BLAS reaches right now.

    python benchmarks/bench_fit.py                 # all cases
    python benchmarks/bench_fit.py --cases 1,2     # a subset
    python benchmarks/bench_fit.py --quick         # fewer epochs and rows (a smoke run)
    python benchmarks/bench_fit.py --features --cases 1,3   # what dropout and AdamW add
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def sgemm_rate(repeats=5):
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    b = a.copy()
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * 1024**3 / min(times) / 1e9


def train_flops(n, sizes):
    """FLOPs of one epoch: forward X W, backward X^T dZ, and dZ W^T except for the first layer."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * n * i * o for i, o in pairs)
    return fwd * 2 + sum(2 * n * i * o for i, o in pairs[1:])


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ------------------------------------------------------------------------------------- peers
def fit_sklearn_like(cls, X, y, hidden, batch, epochs, **extra):
    est = cls(hidden_layer_sizes=hidden, solver="adam", learning_rate_init=1e-3, batch_size=batch,
              max_iter=epochs, tol=0.0, n_iter_no_change=10**9, random_state=0, shuffle=True, **extra)
    est.fit(X, y)
    return est


class TorchPeer:
    def __init__(self, X, y, hidden, batch, classify):
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        torch.manual_seed(0)
        self.torch = torch
        self.X = torch.from_numpy(X)
        self.classify = classify
        n_out = int(y.max()) + 1 if classify else (1 if y.ndim == 1 else y.shape[1])
        self.y = torch.from_numpy(y.astype(np.int64) if classify else y.reshape(len(y), -1).astype(np.float32))
        layers, width = [], X.shape[1]
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_out))
        self.model = torch.nn.Sequential(*layers)
        decay = [p for name, p in self.model.named_parameters() if name.endswith("weight")]
        other = [p for name, p in self.model.named_parameters() if not name.endswith("weight")]
        # scikit-learn's alpha / (2 n_batch) ||W||^2 is weight decay alpha / n_batch on the weights.
        self.opt = torch.optim.Adam([{"params": decay, "weight_decay": 1e-4 / batch},
                                     {"params": other, "weight_decay": 0.0}], lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss() if classify else torch.nn.MSELoss()
        self.batch = batch

    def epochs(self, n_epochs):
        torch = self.torch
        n = self.X.shape[0]
        for _ in range(n_epochs):
            perm = torch.randperm(n)
            for s in range(0, n, self.batch):
                idx = perm[s:s + self.batch]
                self.opt.zero_grad(set_to_none=True)
                out = self.model(self.X[idx])
                loss = self.loss(out, self.y[idx]) if self.classify else 0.5 * self.loss(out, self.y[idx])
                loss.backward()
                self.opt.step()

    def predict(self, X):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(X)).numpy()

    def score(self, X, y):
        out = self.predict(X)
        if self.classify:
            return float((out.argmax(1) == y).mean())
        y = y.reshape(len(y), -1)
        return float(1 - ((out - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


# ------------------------------------------------------------------------------------- cases
def make_case(case, quick):
    from sklearn.datasets import load_digits, make_classification, make_regression

    if case == 1:
        X, y = load_digits(return_X_y=True)
        return "digits 1797x64, (100,), batch 200", (X / 16).astype(np.float32), y, (100,), 200, True
    if case == 2:
        n = 20000 if quick else 100000
        X, y = make_regression(n_samples=n, n_features=20, noise=1.0, random_state=0)
        y = (y - y.mean()) / y.std()
        return f"regression {n}x20, (64, 64), batch 200", X.astype(np.float32), y.astype(np.float32), (64, 64), 200, False
    n = 10000 if quick else 60000
    X, y = make_classification(n_samples=n, n_features=784, n_informative=60, n_classes=10,
                               random_state=0)
    return f"classification {n}x784, (256, 128), batch 256", X.astype(np.float32), y, (256, 128), 256, True


def run_training_case(case, args, peak):
    """Each peer's fit of `epochs` epochs and of one epoch, timed in --rounds interleaved rounds
    of --repeats runs: the per-epoch cost is the difference over epochs - 1, the fixed cost
    (validation, conversion, set-up, the first epoch's extra) what one epoch's fit adds to it."""
    from sklearn.neural_network import MLPClassifier as SkC, MLPRegressor as SkR

    from mlp import MLPClassifier, MLPRegressor

    title, X, y, hidden, batch, classify = make_case(case, args.quick)
    # Case 1 runs 20 epochs: after 5, two random initialisations alone still differ by ~0.015 in
    # training accuracy, which would hide whether the scores agree; after 20, by ~0.002.
    epochs = args.epochs or {1: 20, 2: 5, 3: 3}[case]
    n_out = len(np.unique(y)) if classify else 1
    sizes = [X.shape[1], *hidden, n_out]
    flops = train_flops(len(X), sizes)
    ours_cls, sk_cls = (MLPClassifier, SkC) if classify else (MLPRegressor, SkR)

    fit_sklearn_like(ours_cls, X[:256], y[:256], hidden, batch, 1)  # warm-up: load, thread pool
    last = {}
    peers = {
        "mlp": lambda e: last.__setitem__("mlp", fit_sklearn_like(ours_cls, X, y, hidden, batch, e)),
        "scikit-learn": lambda e: last.__setitem__("scikit-learn",
                                                   fit_sklearn_like(sk_cls, X, y, hidden, batch, e)),
    }
    if have_torch():
        def torch_fit(e):  # the peer's own set-up (model, optimizer, tensors) is its fixed cost
            peer = TorchPeer(X, y, hidden, batch, classify)
            peer.epochs(e)
            last["pytorch"] = peer
        peers["pytorch"] = torch_fit
    per_epoch = {name: [] for name in peers}
    fixed = {name: [] for name in peers}
    trained = {}  # the full fits, for their scores
    for _ in range(args.rounds):
        for name, fit in peers.items():
            t_all = median_time(lambda: fit(epochs), args.repeats)
            trained[name] = last[name]
            t_one = median_time(lambda: fit(1), args.repeats) if epochs > 1 else t_all
            pe = (t_all - t_one) / (epochs - 1) if epochs > 1 else t_all
            per_epoch[name].append(pe)
            fixed[name].append(max(0.0, t_one - pe))
    print(f"\nCase {case}: {title}, {epochs} epochs, Adam lr 1e-3, float32; medians of "
          f"{args.repeats} runs, range over {args.rounds} rounds")
    print(f"{'':14s}{'ms/epoch':>10s}{'range':>16s}{'GFLOP/s':>9s}{'of sgemm':>9s}{'speed-up':>10s}"
          f"{'fixed ms':>10s}{'train score':>12s}")
    ours = statistics.median(per_epoch["mlp"])
    for name in peers:
        pe = statistics.median(per_epoch[name])
        lo, hi = min(per_epoch[name]) * 1e3, max(per_epoch[name]) * 1e3
        gf = flops / pe / 1e9
        score = trained[name].score(X, y)
        print(f"{name:14s}{pe * 1e3:10.2f}  {lo:6.2f}-{hi:<7.2f}{gf:9.1f}{gf / peak:9.0%}"
              f"{pe / ours:9.2f}x{statistics.median(fixed[name]) * 1e3:10.1f}{score:12.4f}")
    return trained["mlp"], X


def run_predict_case(model, X, args):
    from sklearn.neural_network import MLPClassifier as SkC

    n = 100_000 if args.quick else 1_000_000
    reps = int(np.ceil(n / len(X)))
    Xp = np.ascontiguousarray(np.tile(X, (reps, 1))[:n])
    sk = SkC(hidden_layer_sizes=model.hidden_layer_sizes, max_iter=1).fit(X[:512], model.predict(X[:512]))
    sk.coefs_ = [np.array(c) for c in model.coefs_]
    sk.intercepts_ = [np.array(b) for b in model.intercepts_]
    rows = [("mlp", median_time(lambda: model.predict_proba(Xp), args.repeats)),
            ("scikit-learn", median_time(lambda: sk.predict_proba(Xp), args.repeats))]
    if have_torch():
        import torch

        peer = TorchPeer(X[:10], np.arange(10) % 10, model.hidden_layer_sizes, 256, True)
        with torch.no_grad():
            linears = [m for m in peer.model if isinstance(m, torch.nn.Linear)]
            for lin, c, b in zip(linears, model.coefs_, model.intercepts_):
                lin.weight.copy_(torch.from_numpy(np.array(c).T))
                lin.bias.copy_(torch.from_numpy(np.array(b)))
        rows.append(("pytorch", median_time(lambda: peer.predict(Xp), args.repeats)))
    print(f"\nCase 4: prediction, {n} rows through case 3's network")
    print(f"{'':14s}{'rows/s':>12s}{'speed-up':>10s}")
    ours = rows[0][1]
    for name, t in rows:
        print(f"{name:14s}{n / t:12.3g}{t / ours:9.2f}x")


def run_features_case(case, args):
    """What dropout (0.1 after every hidden layer) and AdamW (decoupled decay 0.01) add to an
    epoch of mlp's native network, against plain Adam on the same network, data and batches."""
    import mlp

    title, X, y, hidden, batch, classify = make_case(case, args.quick)
    epochs = args.epochs or {1: 20, 2: 5, 3: 3}[case]
    n_out = int(y.max()) + 1 if classify else 1
    Y = np.eye(n_out, dtype=np.float32)[y] if classify else y.reshape(-1, 1)

    def build(dropout, optimizer):
        first = x = mlp.Dense(hidden[0], input_size=X.shape[1], activation="relu", seed=0)
        if dropout:
            x = mlp.Dropout(dropout)(x)
        for i, h in enumerate(hidden[1:]):
            x = mlp.Dense(h, activation="relu", seed=i + 1)(x)
            if dropout:
                x = mlp.Dropout(dropout)(x)
        out = mlp.Dense(n_out, activation="softmax" if classify else None, seed=9)(x)
        model = mlp.Model(first, out)
        model.compile("categorical_cross_entropy" if classify else "mse", optimizer=optimizer)
        return model

    variants = [("adam", 0.0, lambda: mlp.Adam()), ("adam + dropout 0.1", 0.1, lambda: mlp.Adam()),
                ("adamw 0.01", 0.0, lambda: mlp.AdamW(weight_decay=0.01)),
                ("adamw + dropout", 0.1, lambda: mlp.AdamW(weight_decay=0.01))]
    # Interleaved rounds, so that a change in the machine's load hits every variant alike.
    times = {name: [] for name, _, _ in variants}
    models = {name: build(d, make()) for name, d, make in variants}
    for model in models.values():
        model.fit(X[:512], Y[:512], 1, 1e-3, batch_size=batch, seed=0, progress=False)
    for _ in range(args.repeats):
        for name, model in models.items():
            t = time.perf_counter()
            model.fit(X, Y, epochs, 1e-3, batch_size=batch, seed=0, progress=False)
            times[name].append((time.perf_counter() - t) / epochs)
    print(f"\nCase {case} features: {title}, {epochs} epochs, median of {args.repeats} interleaved rounds")
    print(f"{'':22s}{'ms/epoch':>10s}{'vs adam':>9s}{'range':>18s}")
    base = statistics.median(times["adam"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:22s}{med * 1e3:10.2f}{med / base:8.3f}x   {min(ts) * 1e3:7.2f}-{max(ts) * 1e3:.2f} ms")


MEMORY_CHILD = r"""
import sys, numpy as np
def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from {module} import {cls}
n = int(sys.argv[1])
# Filled in chunks so that building X leaves no transient copy in the peak.
X = np.empty((n, 784), dtype=np.float32)
rng = np.random.default_rng(0)
for s in range(0, n, 5000):
    X[s:s + 5000] = rng.standard_normal((min(5000, n - s), 784), dtype=np.float32)
y = rng.integers(0, 10, n)
base = peak_kib()
{cls}(hidden_layer_sizes=(256, 128), batch_size=256, max_iter=1, tol=0.0, random_state=0).fit(X, y)
print(base, peak_kib())
"""


def run_memory_case(args):
    """Peak memory a fit adds on top of its float32 input, each library in a fresh process."""
    import subprocess

    n = 10000 if args.quick else 60000
    x_mib = n * 784 * 4 / 2**20
    print(f"\nPeak memory of one epoch of case 3's network on {n}x784 float32 (X: {x_mib:.0f} MiB), "
          "peak RSS after building X and after the fit, each in a fresh process")
    model_mib = sum(a * b + b for a, b in zip([784, 256, 128], [256, 128, 10])) * 4 / 2**20
    for name, module, cls in [("mlp", "mlp", "MLPClassifier"),
                              ("scikit-learn", "sklearn.neural_network", "MLPClassifier")]:
        code = MEMORY_CHILD.format(module=module, cls=cls)
        out = subprocess.run([sys.executable, "-c", code, str(n)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name:14s} failed: {out.stderr.strip().splitlines()[-1]}")
            continue
        base, peak = (int(v) / 1024 for v in out.stdout.split())
        print(f"{name:14s} +{peak - base:7.1f} MiB over X (model {model_mib:.1f} MiB; one more copy "
              f"of X would be {x_mib:.0f} MiB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="1,2,3,4")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per peer; the median is reported")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each cell shows their range")
    parser.add_argument("--epochs", type=int, default=0, help="epochs per timed fit (default 20, 5 and 3 for cases 1, 2 and 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory (case 3)")
    parser.add_argument("--features", action="store_true",
                        help="only time what dropout and AdamW add to mlp's epoch, for --cases")
    args = parser.parse_args()
    cases = {int(c) for c in args.cases.split(",")}

    import mlp

    info = mlp.build_info()
    peak = sgemm_rate()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(f"mlp {info['version']}: simd {info['simd']}, threads {info['threads']}, gemm {info['gemm']}")
    print(f"numpy 1024x1024 float32 matmul in this run: {peak:.0f} GFLOP/s; torch: {'yes' if have_torch() else 'not installed'}")
    if args.features:
        for case in sorted(cases & {1, 2, 3}):
            run_features_case(case, args)
        return
    model = X3 = None
    for case in (1, 2, 3):
        if case in cases or (case == 3 and 4 in cases):
            m, X = run_training_case(case, args, peak)
            if case == 3:
                model, X3 = m, X
    if 4 in cases:
        run_predict_case(model, X3, args)
    if args.memory:
        run_memory_case(args)


if __name__ == "__main__":
    main()
