"""Command line: ``python -m mlp demo`` trains a digit classifier and reports its accuracy;
``train``, ``predict`` and ``info`` work on CSV files and saved models (mlp/cli.py)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def demo(args: argparse.Namespace) -> int:
    """Train 64 -> hidden -> 10 (softmax, cross-entropy, Adam) on scikit-learn's digits."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        print("The demo uses the handwritten digits that ship with scikit-learn, which is not "
              "installed.\nInstall it with:\n    pip install scikit-learn", file=sys.stderr)
        return 1

    from . import Dense, Model, build_info

    info = build_info()
    print(f"mlp {info['version']} - {info['simd']} kernels, {info['threads']} threads, "
          f"CUDA {'on' if info['cuda'] else 'off'}")

    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities are 0..16; scale them to [0, 1]
    y = np.eye(10)[digits.target]  # one-hot, as categorical cross-entropy expects
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=args.seed, stratify=digits.target)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")

    np.random.seed(args.seed)  # the initial weights come from numpy's global state
    inputs = Dense(input_size=64, output_size=args.hidden, activation="relu")
    outputs = Dense(output_size=10, activation="softmax")(inputs)
    model = Model(inputs, outputs)
    model.compile(loss_fn="categorical_cross_entropy", optimizer="adam", metrics=["accuracy"])
    model.summary()

    start = time.perf_counter()
    model.fit(x_train, y_train, args.epochs, args.learning_rate, print_loss=True,
              batch_size=args.batch_size, validation_data=(x_test, y_test), seed=args.seed)
    seconds = time.perf_counter() - start

    accuracy = model.evaluate(x_test, y_test)["accuracy"]
    print(f"test accuracy: {accuracy:.2%} ({int(round(accuracy * len(x_test)))}/{len(x_test)})")
    print(f"time taken: {seconds:.2f} s for {args.epochs} epochs")
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m mlp``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m mlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("demo", help="train a digit classifier on scikit-learn's digits")
    p.add_argument("--epochs", type=int, default=30, help="passes over the data (default 30)")
    p.add_argument("--hidden", type=int, default=64, help="hidden layer width (default 64)")
    p.add_argument("--learning-rate", type=float, default=0.005, help="Adam's step (default 0.005)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per step (default 32)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=demo)

    from . import cli

    cli.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return args.run(args)
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
