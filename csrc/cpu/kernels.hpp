// The CPU kernel table. Every kernel below is compiled once per instruction set (baseline SSE2,
// AVX2+FMA, AVX-512) into its own namespace; dispatch.cpp picks one table at load time.
#pragma once
#include <cstdint>

#include "../common.hpp"

namespace mlp::cpu {

enum class Epi : int {
  None = 0,     // C = beta C + acc
  BiasAct = 1,  // z = acc + bias[j]; a_out ? (C = z, a_out = act(z)) : (C = act(z))
  Deriv = 2,    // C = acc * act'(deriv_z, deriv_a): the backward pass's dA -> dZ, fused into the write-out
};

// C (m x n) = beta * C + op(A) (m x k) op(B) (k x n), then the epilogue. All row-major.
// op(A) = A (m x k, lda) or A^T with A stored (k x m, lda); likewise op(B).
// beta is applied only when k blocks start (beta == 0 never reads C, so C may be garbage).
template <class T>
struct GemmArgs {
  idx m = 0, n = 0, k = 0;
  const T* a = nullptr; idx lda = 0; bool trans_a = false;
  const T* b = nullptr; idx ldb = 0; bool trans_b = false;
  T* c = nullptr; idx ldc = 0; T beta = T(0);
  // Row gather for A (forward/dW of a shuffled batch): when set, row i of A (or column i of A
  // when trans_a) is row a_rows[i] of the stored matrix. Saves copying the batch.
  const idx* a_rows = nullptr;
  // op(B) already packed by pack_b_all (same k, n, b), or null to pack here.
  const T* packed_b = nullptr;
  Epi epi = Epi::None;
  Act act = Act::Identity; T alpha = T(0);
  const T* bias = nullptr;              // BiasAct: (n,)
  T* a_out = nullptr; idx ld_aout = 0;  // BiasAct: optional second output
  // Deriv: the layer's z and a (values, not gradients), where act' is evaluated; ld_deriv for both.
  const T* deriv_z = nullptr; const T* deriv_a = nullptr; idx ld_deriv = 0;
  // Dropout (dropout.hpp), when drop_keys is set: row i of C has key drop_keys[i], column j is
  // unit j. BiasAct multiplies act(z) by the mask (C keeps z when a_out is set); Deriv reads a
  // masked deriv_a and writes acc * mask * act'(z, a / scale), 0 for a dropped unit.
  const std::uint32_t* drop_keys = nullptr; std::uint32_t drop_threshold = 0; T drop_scale = T(1);
};

template <class T>
struct Kernels {
  void (*gemm)(const GemmArgs<T>& g);
  // op(B) of g packed once (packed_b_size values) for GemmArgs::packed_b.
  idx (*packed_b_size)(idx k, idx n);
  void (*pack_b_all)(T* dst, const GemmArgs<T>& g);
  // a (rows x cols) = act(z); softmax row-wise. z may equal a (in place).
  void (*activation_forward)(T* a, const T* z, idx rows, idx cols, Act act, T alpha);
  // dz = da * act'(z, a); softmax: dz = a * (da - sum_j da a) per row. dz may equal da.
  void (*activation_backward)(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols,
                              Act act, T alpha);
  // sum_n w_n sum_k l(n, k) with w_n = 1 when w is null (unscaled; the caller divides).
  double (*loss_forward)(const T* z, const T* a, const T* y, const T* w, idx rows, idx cols,
                         LossKind loss);
  // dz = coef * w_n * dl/dz (n, k); for MSE through the output activation (act, alpha).
  void (*loss_backward)(T* dz, const T* z, const T* a, const T* y, const T* w, idx rows, idx cols,
                        LossKind loss, Act act, T alpha, T coef);
  // db (cols) = beta * db + sum over rows of x (rows x cols).
  void (*col_sum)(T* db, const T* x, idx rows, idx cols, T beta);
  // out[i] = sum_b bufs[b][i] for i in [0, n).
  void (*sum_buffers)(T* out, const T* const* bufs, int nbufs, idx n);
  double (*sum_squares)(const T* x, idx n);
  // Optimizer steps, computed into d (may alias g) and applied by add_inplace; they return
  // whether every p + d is finite, so a diverging step can be refused.
  // With g' = gs * g + l2 * p (gs: the clipping factor, 1 without clipping), and the decoupled
  // weight decay `decay` = lr * weight_decay (0 for none):
  //   v = mu v - lr g';  d = (nesterov ? mu v - lr g' : v) - decay p.
  // mu == 0 is plain gradient descent: d = -lr g' - decay p (v untouched, may be null).
  bool (*sgd_delta)(T* d, const T* p, const T* g, T* v, idx n, T lr, T mu, bool nesterov, T l2, T gs, T decay);
  // m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;  d = -lr_t m / (sqrt(v) + eps) - decay p.
  bool (*adam_delta)(T* d, const T* p, const T* g, T* m, T* v, idx n, T lr_t, T b1, T c1, T b2, T c2,
                     T eps, T l2, T gs, T decay);  // c1 = 1 - b1, c2 = 1 - b2, rounded from double
  void (*add_inplace)(T* p, const T* d, idx n);
  const char* gemm_name;  // e.g. "mlp packed 8x32 (avx512)"
};

// The table chosen for this machine (AVX-512 > AVX2 > baseline, capped by MLP_SIMD), and its
// name. Chosen once, at first use, and never changed: fits on other threads read it unlocked.
template <class T>
const Kernels<T>& kernels();
const char* simd_level();
const char* gemm_name();

}  // namespace mlp::cpu

// Each instruction-set build defines its table under mlp::cpu::<isa>.
#define MLP_DECLARE_ISA(ns)                      \
  namespace mlp::cpu::ns {                       \
  template <class T> Kernels<T> make_kernels();  \
  }
MLP_DECLARE_ISA(baseline)
MLP_DECLARE_ISA(avx2)
MLP_DECLARE_ISA(avx512)
