"""Types of the compiled extension ``mlp._core`` (csrc/bindings.cpp).

Every array argument must be a C-contiguous numpy array of one floating dtype (float32 or
float64), the same dtype for all arrays of one call. ``mlp/_validation.py`` converts user input
into that form; the C++ side asserts it again and raises ValueError/TypeError if violated.
Shapes below use N = rows (samples), I = input width, O = output width.
"""
from __future__ import annotations

import enum
from typing import Optional

import numpy as np

# The codes the functions below take; named ...Kind, apart from the public classes
# mlp.Activation, mlp.Loss and mlp.Optimizer.
class ActivationKind(enum.IntEnum):
    IDENTITY = 0
    RELU = 1
    LEAKY_RELU = 2  # alpha: negative slope (default 0.01)
    ELU = 3  # alpha: saturation value (default 1.0)
    SIGMOID = 4
    TANH = 5
    SWISH = 6  # z * sigmoid(z), a.k.a. silu
    SOFTMAX = 7  # row-wise
    SELU = 8  # scale * elu(z, alpha), alpha = 1.67326..., scale = 1.05070...; no parameter
    MISH = 9  # z * tanh(softplus(z))
    GELU = 10  # z * Phi(z) = 0.5 z (1 + erf(z / sqrt(2)))
    GELU_TANH = 11  # 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3)))

class LossKind(enum.IntEnum):
    MSE = 0  # per sample: sum_k (a - y)^2; any output activation
    CATEGORICAL_CROSS_ENTROPY = 1  # fused with a SOFTMAX output, computed from the logits
    BINARY_CROSS_ENTROPY = 2  # fused with a SIGMOID output, computed from the logits
    POISSON = 3  # fused with an exponential link on an IDENTITY output: a = exp(z); sum_k exp(z) - y z

class OptimizerKind(enum.IntEnum):
    SGD = 0  # plain, momentum or Nesterov (sklearn's update: v = mu v - lr g; w += v)
    ADAM = 1  # bias-corrected (Kingma & Ba), lr_t = lr sqrt(1-b2^t)/(1-b1^t)

# Loss convention shared by loss_forward / loss_backward / Network:
#   L = scale * sum_n w_n * sum_k l(n, k) / sum_n w_n        (w_n = 1 when sample_weight is None)
# so scale = 1/O gives a mean over elements (the spec's mse), scale = 0.5/O sklearn's squared_error.

EXP_LIMIT_FLOAT32: float  # exp() arguments are clamped to this (csrc/activations.hpp)
EXP_LIMIT_FLOAT64: float
SELU_ALPHA: float  # selu(z) = SELU_SCALE * (z if z > 0 else SELU_ALPHA * (exp(z) - 1))
SELU_SCALE: float

def simd_level() -> str: ...  # 'avx512', 'avx2' or 'baseline': the kernel set chosen at import
def gemm_name() -> str: ...  # the GEMM in use, e.g. "mlp packed 8x32 (avx512)"
def max_threads() -> int: ...  # threads a fit uses when n_threads is 0 (honours OMP/threadpoolctl limits)
def compiler() -> str: ...
def cuda_available() -> bool: ...  # whether this build has the CUDA kernels (MLP_CUDA)
def cuda_device_count() -> int: ...  # visible GPUs; 0 without a CUDA build, a driver or a GPU
def cuda_device_name(ordinal: int = 0) -> str: ...  # e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)"
def cuda_set_tf32(enabled: bool) -> None: ...  # TF32 tensor cores for float32 GEMMs (default off)
def cuda_tf32() -> bool: ...
def cuda_set_lt_epilogues(enabled: bool) -> None: ...  # cuBLASLt bias/ReLU epilogues (default on)

def gemm(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) with op = transpose when the flag is set."""

def activation_forward(z: np.ndarray, act: ActivationKind, alpha: float) -> np.ndarray:
    """z: (N, O) -> a: (N, O)."""

def activation_backward(z: np.ndarray, a: np.ndarray, da: np.ndarray, act: ActivationKind, alpha: float) -> np.ndarray:
    """dL/dz from dL/da; for SOFTMAX the row-wise Jacobian-vector product a * (da - sum(da * a))."""

def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, act: ActivationKind, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, I) w: (I, O) b: (O,) -> (z, a) with z = x @ w + b, a = act(z)."""

def dense_backward(x: np.ndarray, w: np.ndarray, z: np.ndarray, a: np.ndarray, g: np.ndarray,
                   act: ActivationKind, alpha: float, g_is_dz: bool, need_dx: bool
                   ) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """g = dL/da (or dL/dz when g_is_dz) of shape (N, O) -> (dw (I, O), db (O,), dx (N, I) or None)."""

def loss_forward(z: np.ndarray, a: np.ndarray, y: np.ndarray, loss: LossKind,
                 sample_weight: Optional[np.ndarray], scale: float) -> float:
    """z, a, y: (N, O); sample_weight: (N,) or None. Returns L (see the convention above)."""

def loss_backward(z: np.ndarray, a: np.ndarray, y: np.ndarray, loss: LossKind, act: ActivationKind, alpha: float,
                  sample_weight: Optional[np.ndarray], scale: float) -> np.ndarray:
    """dL/dz of the output layer (N, O): the fused formula for CCE/BCE/POISSON, and for MSE
    dL/da multiplied by the output activation's derivative (act, alpha)."""

def sgd_step(params: np.ndarray, grads: np.ndarray, velocity: np.ndarray, lr: float,
             momentum: float, nesterov: bool) -> None:
    """In place over flat 1-D arrays of equal length. momentum = 0 is plain gradient descent."""

def adam_step(params: np.ndarray, grads: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float,
              beta1: float, beta2: float, eps: float, t: int) -> None:
    """In place; t is the step number, starting at 1."""

class Network:
    """A chain of dense layers owning its weights, optimizer state and scratch buffers.

    sizes = [I, h1, ..., O] (len = n_layers + 1); activations/alphas have one entry per layer.
    Weights live in one flat buffer, layer by layer: W0 (I x h1, row-major), b0, W1, b1, ...,
    then the embedding tables (rows x width each, in order).
    With embeddings [(column, rows, width), ...], x has n_inputs columns and I (= sizes[0]) is
    the widths of the embeddings plus the other columns: the first layer sees each embedded
    column's table row, then the other columns in their order.
    """

    dtype: str  # 'float32' or 'float64'
    n_layers: int
    n_params: int
    sizes: list[int]
    n_inputs: int  # the columns of x (sizes[0] without embeddings)
    step: int  # optimizer steps taken (Adam's t); schedules and dropout masks key on it
    dropout: list[float]  # per layer
    label_smoothing: float
    last_threads: int  # threads that ran the last batches of the last CPU train_epoch (0: none yet)

    def __init__(self, sizes: list[int], activations: list[ActivationKind], alphas: list[float],
                 loss: LossKind, loss_scale: float, dtype: str,
                 embeddings: list[tuple[int, int, int]] = ..., n_inputs: int = 0,
                 ensemble: int = 1) -> None: ...
    ensemble: int  # members per sample (1: no ensemble)
    def adapters(self) -> np.ndarray:
        """Writable view (ensemble, sizes[0]) of the members' input adapters, after the tables."""
    def embedding(self, e: int) -> np.ndarray:
        """Writable view (rows, width) of embedding e's table into params."""
    def set_dropout(self, rates: list[float]) -> None:
        """One rate in [0, 1) per layer (the last 0): inverted dropout of each layer's output in
        train_epoch and loss_and_grad(training=True); masks keyed by (seed, step, layer, row,
        unit), see csrc/dropout.hpp."""
    def set_schedule(self, slot: int, kind: int, warmup: float = 0.0, total: float = 1.0,
                     floor: float = 0.0, flat: float = 0.0) -> None:
        """Slot 0 (learning rate), 1 (weight decay), 2 (dropout) follows schedule `kind`
        (csrc/schedule.hpp; mlp.schedules builds the arguments), from the current step."""
    def set_label_smoothing(self, label_smoothing: float) -> None:
        """Cross-entropy targets become y (1 - ls) + ls / K (K = 2 for binary)."""
    @property
    def params(self) -> np.ndarray:
        """Writable flat view of every weight and bias (it keeps the Network alive)."""
    def weight(self, i: int) -> np.ndarray:
        """Writable view (sizes[i], sizes[i+1]) into params."""
    def bias(self, i: int) -> np.ndarray:
        """Writable view (sizes[i+1],) into params."""
    def set_optimizer(self, kind: OptimizerKind, momentum: float = 0.0, nesterov: bool = False,
                      beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                      weight_decay: float = 0.0, decay_bias: bool = False,
                      clipnorm: float = 0.0) -> None:
        """Chooses the update rule; resets the optimizer state. weight_decay: decoupled,
        p -= lr * weight_decay * p per step (biases only with decay_bias); clipnorm > 0 scales
        the data gradient to at most that global norm."""
    def set_l2(self, alpha: float, per_sample: bool) -> None:
        """Penalty 0.5 * alpha * sum ||W||^2 (biases excluded), divided by the batch's weight
        sum when per_sample (sklearn's alpha), else not (Keras' l2 / 2)."""
    def reset_optimizer_state(self) -> None: ...
    def optimizer_state(self) -> list[np.ndarray]:
        """Copies of the optimizer's flat buffers (velocity, or m and v)."""
    def set_optimizer_state(self, state: list[np.ndarray], step: int) -> None: ...
    def set_seed(self, seed: int) -> None:
        """Seeds the shuffling generator (a 64-bit counter-based generator owned here)."""
    def set_threads(self, n: int) -> None:
        """0 = max_threads() at each call; a positive number caps the threads of this network."""
    def train_epoch(self, x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray],
                    batch_size: int, shuffle: bool, lr: float,
                    order: Optional[np.ndarray] = None) -> float:
        """One pass over x (N, I), y (N, O) in batches, GIL released. Returns the sample-weighted
        mean of the batch losses (L2 penalty included). If a batch's loss is not finite the epoch
        stops before applying that update and NaN is returned; the weights stay finite.
        Ctrl-C raises KeyboardInterrupt within a few batches; finished batches stay applied."""
    def predict(self, x: np.ndarray, finite_only: bool = False) -> Optional[np.ndarray]:
        """(N, I) -> (N, O) output activations, GIL released, rows split across threads (up to
        4 rows: on the calling thread, bit-identical). finite_only: None when x holds a NaN or
        an infinity (the callers' fast path, which then runs its full check)."""
    def loss(self, x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray]) -> float:
        """Full-data loss (L2 included, with the whole data as one batch), no update."""
    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray],
                      training: bool = False) -> tuple[float, np.ndarray]:
        """Full-data loss and its gradient wrt params (flat copy, same layout), no update;
        training applies the dropout masks of the current step."""
    @property
    def device(self) -> str:
        """'cpu' or 'cuda:N': where train_epoch, predict, loss and loss_and_grad run."""
    def to_device(self, ordinal: int) -> None:
        """-1: the CPU; N >= 0: CUDA device N (ValueError in a CPU-only build or for a missing
        device). The weights, optimizer state, step and generator stay in this object's host
        memory (params stays a plain numpy view): each device call uploads them and writes them
        back, so a network moves between devices without loss."""
    def release_data(self) -> None:
        """Frees the training data a GPU keeps between train_epoch (and loss_and_grad) calls that
        pass the same x, y, sample_weight objects. Call it when a fit ends: an array changed in
        place in between would otherwise not be uploaded again. A no-op on the CPU."""


class _CudaOps:
    """_core.cuda_ops: the CUDA operations on host arrays, under the names and arguments of the
    CPU functions above (gemm, activation_forward/backward, dense_forward, loss_forward/backward,
    sgd_step, adam_step), plus gather_rows(x, rows). dense_forward also takes want_z=False (z is
    then None: the hidden layers' path); dense_backward also takes prev_act,
    prev_alpha, prev_z, prev_a to apply the previous layer's derivative to dx. They raise
    ValueError in a CPU-only build. For the tests in tests/cuda."""

cuda_ops: _CudaOps
