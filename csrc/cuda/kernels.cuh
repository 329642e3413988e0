// The CUDA kernels under the CPU names (csrc/cpu/kernels.hpp), on device pointers, enqueued on a
// Context's stream. The scalar math comes from ../activations.hpp, shared with the CPU.
#pragma once
#include "common.cuh"

namespace mlp::cuda {

// --- gemm.cu ------------------------------------------------------------------------------------
// Row-major, as cpu::GemmArgs: c (m, n) = beta c + op(a) op(b); op(a) is a (m, k; lda) or, when
// ta, a^T with a stored (k, m; lda); likewise op(b).
template <class T>
void gemm(Context& c, T* out, const T* a, const T* b, idx m, idx n, idx k, bool ta, idx lda, bool tb, idx ldb,
          idx ldc, T beta);
// out (m, n) = [relu](a (m, k; lda) w (k, n; ldw) + bias (n)) through a cuBLASLt epilogue.
// false when cuBLASLt has no algorithm for it (nothing was written): the caller falls back.
template <class T>
bool gemm_bias(Context& c, T* out, const T* a, idx lda, const T* w, idx ldw, const T* bias, idx m, idx n, idx k,
               idx ldc, bool relu);
// db (cols) = beta db + sum over rows of x (rows, cols): a GEMV with a vector of ones.
template <class T>
void col_sum(Context& c, T* db, const T* x, idx rows, idx cols, T beta);

// --- activation.cu ------------------------------------------------------------------------------
// a (rows, cols) = act(z); softmax row-wise. a may equal z.
template <class T>
void activation_forward(Context& c, T* a, const T* z, idx rows, idx cols, Act act, T alpha);
// z += b (per column), then a = act(z) when a is non-null (a may equal z).
template <class T>
void bias_activation_forward(Context& c, T* z, T* a, const T* b, idx rows, idx cols, Act act, T alpha);
// dz = da * act'(z, a); softmax: dz = a * (da - sum_j da_j a_j) per row. dz may equal da.
template <class T>
void activation_backward(Context& c, T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act,
                         T alpha);

// --- loss.cu ------------------------------------------------------------------------------------
// Blocks (and so partial sums) that loss() uses for `count` rows.
unsigned loss_blocks(idx count);
// For rows r < count of z (count, cols): the sample s = rows ? rows[r] : r of y (., cols) and of the
// weights w (., or null for 1). a is the output activation (count, cols), or null to compute it
// from z (only MSE reads it). Writes, when non-null:
//   partials[block] = sum over the block's rows of w_s sum_k l(r, k)   (double, unscaled)
//   dz (count, cols) = coef w_s dl/dz, coef = *coef_dev when coef_dev is non-null.
template <class T>
void loss(Context& c, double* partials, T* dz, const T* z, const T* a, const T* y, const T* w, const idx* rows,
          idx count, idx cols, LossKind kind, Act act, T alpha, T coef, const double* coef_dev);

// --- optimizer.cu -------------------------------------------------------------------------------
// One launch over all n parameters: g (the gradient) becomes the step d, with
// g' = g + l2 p for p[i] with i < n_weights (biases are not penalized), l2 = l2_dev ? *l2_dev : l2;
//   sgd:  mu == 0: d = -lr g';  else v = mu v - lr g', d = nesterov ? mu v - lr g' : v
//   adam: m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = -lr m / (sqrt(v) + eps)  (lr = lr_t)
// Optional: pen_partials[block] = sum of p^2 over the weights (before the step); *bad = 1 when some
// p + d is not finite; nothing at all is done while *skip != 0.
template <class T>
struct StepArgs {
  T* g = nullptr;
  const T* p = nullptr;
  T* m = nullptr;
  T* v = nullptr;
  idx n = 0, n_weights = 0;
  OptKind kind = OptKind::Sgd;
  T lr = 0, mu = 0, b1 = 0, b2 = 0, eps = 0, l2 = 0;
  T c1 = 0, c2 = 0;  // 1 - b1 and 1 - b2, rounded from double (see cpu/optimizer.cpp)
  bool nesterov = false;
  const double* l2_dev = nullptr;
  double* pen_partials = nullptr;
  int* bad = nullptr;
  const int* skip = nullptr;
};
template <class T>
unsigned step_blocks(idx n);
template <class T>
void optimizer_delta(Context& c, const StepArgs<T>& s);
// p += d, unless *skip or *bad (either may be null).
template <class T>
void add_inplace(Context& c, T* p, const T* d, idx n, const int* skip, const int* bad);
// Over the first n_weights of p: partials[block] = sum p^2, and g += l2 p when g is non-null
// (l2 = *l2_dev). The L2 term of loss_and_grad.
template <class T>
void weight_penalty(Context& c, double* partials, T* g, const T* p, idx n_weights, const double* l2_dev);

// --- gather.cu ----------------------------------------------------------------------------------
// out (count, cols) = x[rows[i], :] for i < count: the shuffled batch made contiguous.
template <class T>
void gather_rows(Context& c, T* out, const T* x, const idx* rows, idx count, idx cols);

// --- reductions (loss.cu) -----------------------------------------------------------------------
// *out (+)= sum of partials[0:n] in a fixed order (one block), so results repeat exactly.
void sum_partials(Context& c, double* out, const double* partials, int n, bool accumulate);

}  // namespace mlp::cuda
