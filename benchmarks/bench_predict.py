"""One-row prediction latency: a fitted model serving one request at a time.

The network is digits' (64 -> 100 -> 10, ReLU, softmax), trained once by mlp's MLPClassifier;
every peer predicts with exactly its weights:

- mlp: ``MLPClassifier.predict_proba`` and ``predict``, and the spec API's ``Model.predict``;
- scikit-learn: its MLPClassifier with the same coefs_ and intercepts_;
- onnxruntime: ``mlp.to_onnx`` of the same estimator, one session, one thread;
- PyTorch (when installed): ``nn.Sequential`` with the same weights, under inference_mode.

Each figure is the median of --repeats timed runs of --calls calls each, in microseconds per
call; the whole table is measured --rounds times (interleaved) and each cell shows the median of
the rounds' medians and their range, since a shared machine's load moves between rounds.

    python benchmarks/bench_predict.py
    python benchmarks/bench_predict.py --calls 500 --repeats 3   # a quick look
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


def per_call_us(fn, calls: int, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(runs)


def peers():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier as SkMLP

    import mlp

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    clf = mlp.MLPClassifier(hidden_layer_sizes=(100,), max_iter=20, random_state=0).fit(X, y)
    row = np.ascontiguousarray(X[:1])
    out = {"mlp predict_proba": lambda: clf.predict_proba(row),
           "mlp predict": lambda: clf.predict(row)}

    first = mlp.Dense(100, input_size=64, activation="relu")
    model = mlp.Model(first, mlp.Dense(10, activation="softmax")(first))
    model.compile("categorical_cross_entropy")
    model.layers[0].weights, model.layers[0].bias = clf.coefs_[0], clf.intercepts_[0]
    model.layers[1].weights, model.layers[1].bias = clf.coefs_[1], clf.intercepts_[1]
    out["mlp Model.predict"] = lambda: model.predict(row)

    sk = SkMLP(hidden_layer_sizes=(100,), max_iter=1).fit(X[:200], y[:200])
    sk.coefs_ = [np.array(c) for c in clf.coefs_]
    sk.intercepts_ = [np.array(b) for b in clf.intercepts_]
    out["scikit-learn predict_proba"] = lambda: sk.predict_proba(row)
    checks = {"scikit-learn": np.abs(sk.predict_proba(X) - clf.predict_proba(X)).max(),
              "Model": np.abs(model.predict(X) - clf.predict_proba(X)).max()}

    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(mlp.to_onnx(clf).SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        feeds = {"input": row}
        out["onnxruntime (same model)"] = lambda: sess.run(["probabilities"], feeds)
        checks["onnxruntime"] = np.abs(sess.run(["probabilities"], {"input": X})[0]
                                       - clf.predict_proba(X)).max()
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
        net = torch.nn.Sequential(torch.nn.Linear(64, 100), torch.nn.ReLU(),
                                  torch.nn.Linear(100, 10), torch.nn.Softmax(dim=1))
        with torch.no_grad():
            for lin, c, b in zip((net[0], net[2]), clf.coefs_, clf.intercepts_):
                lin.weight.copy_(torch.from_numpy(np.array(c).T))
                lin.bias.copy_(torch.from_numpy(np.array(b)))

        def torch_one():
            with torch.inference_mode():
                return net(torch.from_numpy(row)).numpy()

        out["pytorch (inference_mode)"] = torch_one
        checks["pytorch"] = float(np.abs(net(torch.from_numpy(X)).detach().numpy()
                                         - clf.predict_proba(X)).max())
    except ImportError:
        pass
    return out, checks


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept")
    parser.add_argument("--rounds", type=int, default=2, help="times the whole table is measured")
    args = parser.parse_args()

    import mlp

    info = mlp.build_info()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {sys.version.split()[0]}; mlp {info['version']} ({info['simd']})")
    fns, checks = peers()
    print("largest difference from mlp's predict_proba over digits: "
          + ", ".join(f"{k} {v:.1e}" for k, v in checks.items()))
    results = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            results[name].append(per_call_us(fn, args.calls, args.repeats))
    ours = statistics.median(results["mlp predict_proba"])
    print(f"\nOne row of digits through (100,): microseconds per call, median of {args.repeats} "
          f"runs of {args.calls} calls; range over {args.rounds} rounds")
    print(f"{'':28s}{'us/call':>9s}{'range':>16s}{'vs mlp':>9s}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:28s}{med:9.1f}   {min(values):6.1f}-{max(values):<6.1f}{med / ours:8.2f}x")


if __name__ == "__main__":
    main()
