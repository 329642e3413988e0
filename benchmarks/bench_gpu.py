"""Training speed of mlp on CUDA against PyTorch CUDA, in one run, on one GPU.

Both train the same network on the same float32 data, held on the GPU by both, with Adam
(lr 1e-3), a new random order of the rows every epoch, and the same batch size; TF32 is off or
on for both alike (--tf32), and the table says which. Cases:
  (a) 1,000,000 x 64 inputs, 4 hidden layers of 64 (ReLU), 1 output (MSE), batch 4096;
  (b) 200,000 x 784 inputs, hidden (1024, 1024) (ReLU), 10 classes (softmax + cross-entropy),
      batch 1024.
Each figure is samples per second over steady-state epochs only: --warmup epochs first (mlp: its
data upload, cuBLASLt plans and the first copy of the weights; PyTorch: its allocator, cuBLAS
handles and torch.compile's compilation and CUDA graphs), then --epochs timed ones, every timed
epoch ending in a synchronization (mlp: the weights copied back to the host, as every epoch does;
PyTorch: torch.cuda.synchronize()). PyTorch variants:
  eager:    model(x), loss.backward(), torch.optim.Adam (its default, foreach), zero_grad(None);
  fused:    the same with Adam(fused=True);
  compiled: torch.compile(model, mode="reduce-overhead") (CUDA graphs) with Adam(fused=True).
For mlp the table also states the launches per step (kernel launches and cuBLAS calls that mlp
enqueued, from mlp._core.cuda_stats(), over the timed epochs).
Targets on an H100/H200 (reported, never asserted): case (a) >= 3x eager and >= 1.5x the best
PyTorch variant; case (b) >= 1.2x eager.

    python benchmarks/bench_gpu.py                  # both cases, TF32 off and on
    python benchmarks/bench_gpu.py --cases a --tf32 off
    python benchmarks/bench_gpu.py --quick          # fewer rows and epochs (a smoke run)
    python benchmarks/bench_gpu.py --json out.json  # the figures as JSON too

Without a CUDA build of mlp or without a GPU it says so and exits without measuring: status 0,
or 1 with MLP_REQUIRE_CUDA=1 in the environment. A CUDA runtime that fails otherwise (an old
driver, say) is an error: status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import mlp
from mlp import Adam, Dense, Model, _core, _device
from mlp.callbacks import Callback

CASES = {
    "a": dict(n=1_000_000, features=64, hidden=(64, 64, 64, 64), outputs=1, batch=4096,
              label="(a) 1M x 64, 4 x 64 hidden, 1 output (mse), batch 4096", target_eager=3.0, target_best=1.5),
    "b": dict(n=200_000, features=784, hidden=(1024, 1024), outputs=10, batch=1024,
              label="(b) 200k x 784, hidden (1024, 1024), 10 classes (cce), batch 1024", target_eager=1.2,
              target_best=None),
}
VARIANTS = ("eager", "fused", "compiled")


def status():
    """(exit status or None to measure, message)."""
    kind, msg = _device.cuda_problem()
    if kind == "ok":
        return None, None
    if kind == "error":
        return 1, f"bench_gpu: error: {msg}"
    if os.environ.get("MLP_REQUIRE_CUDA", "") not in ("", "0"):
        return 1, f"bench_gpu: MLP_REQUIRE_CUDA=1, but cannot measure: {msg}"
    return 0, f"bench_gpu: skipped: {msg}"


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


class EpochClock(Callback):
    """The time at the end of every epoch, and the counters at the end of the warm-up."""

    def __init__(self, warmup):
        self.warmup, self.ends, self.start, self.stats = warmup, [], None, None

    def on_train_begin(self, estimator):
        self.start = time.perf_counter()

    def on_epoch_end(self, estimator, epoch, logs):
        self.ends.append(time.perf_counter())
        if len(self.ends) == self.warmup:
            _core.cuda_reset_stats()
        return False


def time_mlp(case, x, y, warmup, epochs, tf32):
    _core.cuda_set_tf32(tf32)
    model = mlp_model(case)
    clock = EpochClock(warmup)
    model.fit(x, y, warmup + epochs, 1e-3, batch_size=case["batch"], seed=0, progress=False, callbacks=[clock])
    stats = _core.cuda_stats()
    seconds = clock.ends[-1] - clock.ends[warmup - 1]
    steps = epochs * -(-len(x) // case["batch"])
    return dict(rate=len(x) * epochs / seconds, loss=float(model.history["loss"][-1]),
                launches_per_step=stats["launches"] / steps, epilogue_runs=stats["epilogue_runs"],
                epilogue_fallbacks=stats["epilogue_fallbacks"], bgrad_runs=stats["bgrad_runs"],
                bgrad_fallbacks=stats["bgrad_fallbacks"], resident_hits=stats["resident_hits"],
                last_fallback=stats["last_fallback"])


# ------------------------------------------------------------------------------------- PyTorch
def time_torch(torch, variant, case, x, y, labels, warmup, epochs, tf32):
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
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=variant != "eager")
    model = torch.compile(net, mode="reduce-overhead") if variant == "compiled" else net
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
            loss = crit(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        return total

    for _ in range(warmup):
        epoch()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(epochs):
        total = epoch()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    return dict(rate=n * epochs / seconds, loss=float(total.item()) / n)


def torch_status():
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__} sees no CUDA device"
    return torch, None


def fmt_rate(r):
    return f"{r['rate']:,.0f}" if r and "rate" in r else "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="a,b", help="comma-separated subset of: a, b")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up")
    ap.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    ap.add_argument("--tf32", choices=["off", "on", "both"], default="both")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="PyTorch variants: eager, fused, compiled")
    ap.add_argument("--quick", action="store_true", help="a tenth of the rows, one timed epoch")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    code, msg = status()
    if code is not None:
        print(msg, file=sys.stderr if code else sys.stdout)
        return code
    torch, why_not = torch_status()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if torch else []
    print(f"GPU: {_core.cuda_device_name(0)}")
    print(f"mlp {mlp.__version__} (CUDA build); "
          + (f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}): {', '.join(variants)}" if torch
             else f"no peer: {why_not}"))
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tf32]
    epochs = 1 if args.quick else args.epochs
    warmup = max(1, args.warmup)
    rows = []
    for key in args.cases.split(","):
        key = key.strip()
        case = CASES[key]
        n = case["n"] // 10 if args.quick else case["n"]
        x, y, labels = make_data(case, n)
        for tf32 in modes:
            m = time_mlp(case, x, y, warmup, epochs, tf32)
            peers = {}
            for v in variants:
                try:
                    peers[v] = time_torch(torch, v, case, x, y, labels, warmup, epochs, tf32)
                except Exception as e:  # a variant this PyTorch cannot run: say so, measure the rest
                    peers[v] = dict(error=f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
            label = case["label"] if n == case["n"] else f"{case['label']} [{n} rows]"
            rows.append(dict(case=key, label=label, tf32=tf32, mlp=m, torch=peers))
            line = (f"  {key} tf32={'on' if tf32 else 'off'}: mlp {m['rate']:,.0f} samples/s (loss {m['loss']:.4g}, "
                    f"{m['launches_per_step']:.1f} launches/step, epilogue runs {m['epilogue_runs']} / fallbacks "
                    f"{m['epilogue_fallbacks']}, bias-gradient runs {m['bgrad_runs']} / fallbacks "
                    f"{m['bgrad_fallbacks']})")
            for v, r in peers.items():
                line += (f"; torch {v} {r['rate']:,.0f} (loss {r['loss']:.4g})" if "rate" in r
                         else f"; torch {v}: {r['error']}")
            print(line, flush=True)
            if m["last_fallback"]:
                print(f"    last cuBLASLt fallback: {m['last_fallback']}")
    print()
    cols = " | ".join(f"PyTorch {v} samples/s" for v in variants)
    print(f"| case | TF32 | mlp CUDA samples/s | mlp launches/step | {cols}{' | ' if variants else ''}"
          "mlp / eager | mlp / best PyTorch |")
    print("| --- | --- | ---: | ---: | " + "---: | " * len(variants) + "---: | ---: |")
    for r in rows:
        m, peers = r["mlp"], r["torch"]
        rates = {v: p["rate"] for v, p in peers.items() if "rate" in p}
        eager = f"{m['rate'] / rates['eager']:.2f}x" if "eager" in rates else "n/a"
        best = f"{m['rate'] / max(rates.values()):.2f}x" if rates else "n/a"
        r["ratio_eager"] = m["rate"] / rates["eager"] if "eager" in rates else None
        r["ratio_best"] = m["rate"] / max(rates.values()) if rates else None
        peer_cols = " | ".join(fmt_rate(peers.get(v)) for v in variants)
        print(f"| {r['label']} | {'on' if r['tf32'] else 'off'} | {m['rate']:,.0f} | {m['launches_per_step']:.1f} | "
              f"{peer_cols}{' | ' if variants else ''}{eager} | {best} |")
    print()
    for r in rows:
        case = CASES[r["case"]]
        goals = []
        if r["ratio_eager"] is not None:
            goals.append(f"{r['ratio_eager']:.2f}x eager (target >= {case['target_eager']}x: "
                         f"{'met' if r['ratio_eager'] >= case['target_eager'] else 'NOT met'})")
        if case["target_best"] and r["ratio_best"] is not None:
            goals.append(f"{r['ratio_best']:.2f}x best PyTorch (target >= {case['target_best']}x: "
                         f"{'met' if r['ratio_best'] >= case['target_best'] else 'NOT met'})")
        if goals:
            print(f"target {r['case']} tf32={'on' if r['tf32'] else 'off'}: " + "; ".join(goals))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(gpu=_core.cuda_device_name(0), torch=torch.__version__ if torch else None, rows=rows), f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
