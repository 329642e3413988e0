"""The tabular benchmark: mlp's tabular estimators against gradient boosting and tabular deep learning.

See README.md beside this file; ``python benchmarks/tabular/run.py --help``.
"""
