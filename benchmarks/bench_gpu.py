"""Training speed of mlp on CUDA against PyTorch CUDA eager, in one run, on one GPU.

Both train the same network on the same float32 data held on the GPU, with Adam (lr 1e-3), a new
random order of the rows every epoch, and the same batch size; TF32 is off or on for both alike
(--tf32), and the table says which. Cases (the issue's):
  (a) 1,000,000 x 64 inputs, 4 hidden layers of 64 (ReLU), 1 output (MSE), batch 4096;
  (b) 200,000 x 784 inputs, hidden (1024, 1024) (ReLU), 10 classes (softmax + cross-entropy),
      batch 1024.
Each figure is samples per second over --epochs epochs after one warm-up epoch (mlp: one fit,
its data upload included; PyTorch: its loop, torch.cuda.synchronize() at the end).
PyTorch eager is the plain loop: model(x), loss.backward(), torch.optim.Adam (its default, the
foreach implementation) with zero_grad(set_to_none=True).

    python benchmarks/bench_gpu.py                  # both cases, TF32 off and on
    python benchmarks/bench_gpu.py --cases a --tf32 off
    python benchmarks/bench_gpu.py --quick          # fewer rows and epochs (a smoke run)

Without a CUDA build of mlp or without a GPU it says so and exits without measuring (status 0).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import mlp
from mlp import Adam, Dense, Model, _core

CASES = {
    "a": dict(n=1_000_000, features=64, hidden=(64, 64, 64, 64), outputs=1, batch=4096,
              label="(a) 1M x 64, 4 x 64 hidden, 1 output (mse), batch 4096"),
    "b": dict(n=200_000, features=784, hidden=(1024, 1024), outputs=10, batch=1024,
              label="(b) 200k x 784, hidden (1024, 1024), 10 classes (cce), batch 1024"),
}


def skip_reason():
    if not mlp.build_info()["cuda"]:
        return ("this build of mlp has no CUDA support; build it with "
                "pip install --no-build-isolation . -Ccmake.define.MLP_CUDA=ON")
    if mlp.cuda_device_count() == 0:
        return "no CUDA device is visible (mlp.cuda_device_count() == 0)"
    return None


def make_data(case, rows):
    r = np.random.default_rng(0)
    x = r.standard_normal((rows, case["features"]), dtype=np.float32)
    if case["outputs"] == 1:
        y = (np.sin(x[:, :8].sum(1, keepdims=True)) + 0.1 * r.standard_normal((rows, 1))).astype(np.float32)
        labels = None
    else:
        labels = (x[:, :case["outputs"]] + 0.5 * r.standard_normal((rows, case["outputs"]))).argmax(1)
        y = np.eye(case["outputs"], dtype=np.float32)[labels]
    return x, y, labels


# ----------------------------------------------------------------------------------------- mlp
def mlp_model(case):
    np.random.seed(0)
    inputs = layer = Dense(input_size=case["features"], output_size=case["hidden"][0], activation="relu")
    for width in case["hidden"][1:]:
        layer = Dense(output_size=width, activation="relu")(layer)
    classes = case["outputs"] > 1
    outputs = Dense(output_size=case["outputs"], activation="softmax" if classes else "linear")(layer)
    model = Model(inputs, outputs)
    model.compile(loss_fn="categorical_cross_entropy" if classes else "mse", optimizer=Adam(),
                  dtype="float32", device="cuda")
    return model


def time_mlp(case, x, y, epochs, tf32):
    _core.cuda_set_tf32(tf32)
    model = mlp_model(case)
    model.fit(x, y, 1, 1e-3, batch_size=case["batch"], seed=0, progress=False)  # warm-up
    t = time.perf_counter()
    model.fit(x, y, epochs, 1e-3, batch_size=case["batch"], seed=1, progress=False)
    seconds = time.perf_counter() - t
    return len(x) * epochs / seconds, model.history["loss"][-1]


# ------------------------------------------------------------------------------------- PyTorch
def time_torch(case, x, y, labels, epochs, tf32):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device("cuda")
    torch.manual_seed(0)
    layers, width = [], case["features"]
    for h in case["hidden"]:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, case["outputs"]))
    net = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    X = torch.from_numpy(x).to(dev)
    if labels is not None:
        Y = torch.from_numpy(labels).to(dev)
        crit = torch.nn.CrossEntropyLoss()
    else:
        Y = torch.from_numpy(y).to(dev)
        crit = torch.nn.MSELoss()
    n, batch = len(x), case["batch"]

    def epoch():
        total = torch.zeros((), device=dev)
        perm = torch.randperm(n, device=dev)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss = crit(net(X[idx]), Y[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        return total

    epoch()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(epochs):
        total = epoch()
    last = float(total.item()) / n
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    return n * epochs / seconds, last


def torch_status():
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__} sees no CUDA device"
    return torch, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="a,b", help="comma-separated subset of: a, b")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    ap.add_argument("--tf32", choices=["off", "on", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="a tenth of the rows, one timed epoch")
    args = ap.parse_args(argv)

    reason = skip_reason()
    if reason:
        print(f"bench_gpu: skipped: {reason}")
        return 0
    torch, why_not = torch_status()
    print(f"GPU: {_core.cuda_device_name(0)}")
    print(f"mlp {mlp.__version__} (CUDA build); "
          + (f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) eager" if torch else f"no peer: {why_not}"))
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tf32]
    epochs = 1 if args.quick else args.epochs
    rows = []
    for key in args.cases.split(","):
        case = CASES[key.strip()]
        n = case["n"] // 10 if args.quick else case["n"]
        x, y, labels = make_data(case, n)
        for tf32 in modes:
            m_rate, m_loss = time_mlp(case, x, y, epochs, tf32)
            t_rate = t_loss = None
            if torch:
                t_rate, t_loss = time_torch(case, x, y, labels, epochs, tf32)
            rows.append((case["label"] if n == case["n"] else f"{case['label']} [{n} rows]", tf32, m_rate,
                         m_loss, t_rate, t_loss))
            print(f"  {key} tf32={'on' if tf32 else 'off'}: mlp {m_rate:,.0f} samples/s (loss {m_loss:.4g})"
                  + (f", torch {t_rate:,.0f} samples/s (loss {t_loss:.4g}), ratio {m_rate / t_rate:.2f}x"
                     if t_rate else ""), flush=True)
    print()
    print("| case | TF32 | mlp CUDA samples/s | PyTorch eager samples/s | mlp / PyTorch |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, tf32, m_rate, _, t_rate, _ in rows:
        peer = f"{t_rate:,.0f}" if t_rate else "n/a"
        ratio = f"{m_rate / t_rate:.2f}x" if t_rate else "n/a"
        print(f"| {label} | {'on' if tf32 else 'off'} | {m_rate:,.0f} | {peer} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
