// The CUDA kernels under the CPU names (csrc/cpu/kernels.hpp), on device pointers, enqueued on a
// Context's stream. The scalar math comes from ../activations.hpp, shared with the CPU.
#pragma once
#include <cstdint>

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
// dw (in, out) = x (n, in)^T dz (n, out) and db (out) = sum over rows of dz, in one cuBLASLt matmul
// whose epilogue computes the bias gradient (both overwritten: beta 0). false when cuBLASLt has no
// algorithm for it (nothing was written; counted): the caller runs gemm + col_sum instead.
template <class T>
bool gemm_wgrad_bgrad(Context& c, T* dw, T* db, const T* x, const T* dz, idx n, idx in, idx out);
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

// --- dropout (activation.cu) --------------------------------------------------------------------
// The dropout mask of layer `layer`'s output for the rows of a batch at training step `step`, as
// on the CPU (../dropout.hpp): unit j of batch row i is kept iff
// dropout_bits(dropout_row_key(seed, step, layer, data row), j) >= threshold, the data row being
// rows ? rows[i] : row0 + i, so the masks follow the data rows whatever the batch layout.
// Kept units are scaled by scale = 1 / (1 - rate).
template <class T>
struct DropSpec {
  std::uint64_t seed = 0;
  std::int64_t step = 0, layer = 0;
  const idx* rows = nullptr;
  idx row0 = 0;
  std::uint32_t threshold = 0;
  T scale = T(1);
};
// a (rows, cols) *= mask (a = act(z) * mask; z stays unmasked).
template <class T>
void dropout_forward(Context& c, T* a, idx rows, idx cols, const DropSpec<T>& d);
// dz = keep ? da * scale * act'(z, a / scale) : 0, a the masked activation; dz may equal da.
// z may equal a but for swish (act'(z, .) reads z only there). Not for softmax.
template <class T>
void dropout_backward(Context& c, T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act, T alpha,
                      const DropSpec<T>& d);

// --- loss.cu ------------------------------------------------------------------------------------
// Blocks (and so partial sums) that loss() uses for `count` rows.
unsigned loss_blocks(idx count);
// For rows r < count of z (count, cols): the sample s = rows ? rows[r] : r of y (., cols) and of the
// weights w (., or null for 1). a is the output activation (count, cols), or null to compute it
// from z (only MSE reads it). Writes, when non-null:
//   partials[block] = sum over the block's rows of w_s sum_k l(r, k)   (double, unscaled)
//   dz (count, cols) = coef w_s dl/dz, coef = *coef_dev when coef_dev is non-null.
// Label smoothing (ls != 0): every target is read as y (1 - ls) + ls_add, as the CPU's gather.
template <class T>
void loss(Context& c, double* partials, T* dz, const T* z, const T* a, const T* y, const T* w, const idx* rows,
          idx count, idx cols, LossKind kind, Act act, T alpha, T coef, const double* coef_dev, T ls = T(0),
          T ls_add = T(0));

// --- optimizer.cu -------------------------------------------------------------------------------
// One launch over all n parameters: g (the gradient) becomes the step d, with
// g' = gs g + l2 p for p[i] with i < n_weights (biases are not penalized), l2 = l2_dev ? *l2_dev : l2,
// gs = gscale_dev ? *gscale_dev : 1 (global-norm clipping), then the decoupled weight decay:
//   sgd:  mu == 0: d = -lr g' - dec p;  else v = mu v - lr g', d = (nesterov ? mu v - lr g' : v) - dec p
//   adam: m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = -lr m / (sqrt(v) + eps) - dec p  (lr = lr_t)
// with dec = decay on the weights (i < n_weights), and on the biases only when decay_bias.
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
  T decay = 0;              // lr * weight_decay (the scheduled rate, before Adam's bias correction)
  bool decay_bias = false;
  const double* gscale_dev = nullptr;
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
// Global-norm clipping: *scale = min(1, clipnorm / (||g[0:n]|| + 1e-6)), the norm summed in double
// in a fixed order; partials holds kMaxBlocks doubles.
template <class T>
void clip_scale(Context& c, double* scale, double* partials, const T* g, idx n, double clipnorm);

// --- gather.cu ----------------------------------------------------------------------------------
// out (count, cols) = x[rows[i], :] for i < count: the shuffled batch made contiguous.
template <class T>
void gather_rows(Context& c, T* out, const T* x, const idx* rows, idx count, idx cols);

// --- embeddings (gather.cu) ---------------------------------------------------------------------
// Where each column k of the first layer's input x0 (in0 wide) comes from, as device arrays of
// in0 entries: x column src[k]; when base[k] >= 0, that column holds a code and x0 takes element
// base[k] + code * width[k] of the parameters (unit j of table e: base = table offset + j).
struct EmbedLayout {
  idx in0 = 0, n_inputs = 0;
  const idx* src = nullptr;
  const idx* base = nullptr;
  const idx* width = nullptr;
};
// x0 (count, in0) = the first layer's input for batch rows i < count, data row
// rows ? rows[i] : row0 + i of x (., n_inputs).
template <class T>
void embed_rows(Context& c, T* x0, const T* x, const idx* rows, idx row0, idx count, const T* params,
                const EmbedLayout& lay);

// The tables for the backward scatter, as device arrays of n_tables entries: the embedded x
// column, the width, the position in x0, the device offset of the table and the table's first
// row in one numbering of all tables' rows (key_bits: the bits that numbering needs).
struct EmbedTables {
  int n_tables = 0;
  int key_bits = 1;
  idx in0 = 0, n_inputs = 0;
  const idx* column = nullptr;
  const idx* width = nullptr;
  const idx* pos = nullptr;
  const idx* offset = nullptr;
  const idx* first_row = nullptr;
};
// Scratch of embed_backward (grown on demand, after synchronizing the stream): the sort keys.
struct EmbedScratch {
  Buffer<unsigned long long> keys;
};
// Throws std::invalid_argument when embed_backward cannot take count batch rows (see there).
void embed_check(const EmbedTables& tb, idx count);
// Room for count batch rows, so that embed_backward need not grow (and synchronize) in a loop.
void embed_reserve(Context& c, EmbedScratch& s, const EmbedTables& tb, idx count);
// grad[table rows] += dL/dx0 (count, in0) of the batch rows, scatter-added into the rows of their
// codes. Deterministic: the (table row, batch row) pairs are sorted by table row (a bitonic sort
// of distinct keys), then one warp per table row sums its batch rows in batch order (no atomics).
// Throws std::invalid_argument when the batch is too large for the sort keys' 63 bits.
template <class T>
void embed_backward(Context& c, T* grad, const T* dx0, const T* x, const idx* rows, idx row0, idx count,
                    const EmbedTables& tb, EmbedScratch& s);

// --- reductions (loss.cu) -----------------------------------------------------------------------
// *out (+)= sum of partials[0:n] in a fixed order (one block), so results repeat exactly.
void sum_partials(Context& c, double* out, const double* partials, int n, bool accumulate);

}  // namespace mlp::cuda
