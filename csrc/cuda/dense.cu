// Dense layer: forward Y = act(X W + b) as one cuBLASLt matmul whose epilogue adds the bias (and
// applies ReLU), or a GEMM and one fused bias+activation kernel; backward dW = X^T dZ with
// db = sum dZ in the same cuBLASLt matmul's epilogue (or a GEMM and a GEMV), dX = dZ W^T followed
// by the previous layer's derivative.
#include "api.hpp"
#include "dense.cuh"

namespace mlp::cuda {

template <class T>
void dense_forward(Context& c, T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act,
                   T alpha) {
  if (n <= 0) return;
  const bool lt = lt_epilogues();
  if (lt && act == Act::Relu && !z && gemm_bias(c, a, x, in, w, out, b, n, out, in, out, /*relu=*/true)) return;
  T* t = z ? z : a;  // where the logits go
  if (lt && gemm_bias(c, t, x, in, w, out, b, n, out, in, out, /*relu=*/false)) {
    if (a) activation_forward(c, a, t, n, out, act, alpha);  // in place when z is null
    return;
  }
  gemm(c, t, x, w, n, out, in, false, in, false, out, out, T(0));
  bias_activation_forward(c, t, a, b, n, out, act, alpha);
}

template <class T>
void dense_backward(Context& c, T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    T beta, Act prev_act, T prev_alpha, const T* prev_z, const T* prev_a,
                    const DropSpec<T>* prev_drop) {
  // The bias gradient fused into the dW GEMM, where it may overwrite (beta 0: not when chunks of a
  // batch accumulate into dw, db).
  if (!(beta == T(0) && lt_epilogues() && gemm_wgrad_bgrad(c, dw, db, x, dz, n, in, out))) {
    gemm(c, dw, x, dz, in, out, n, /*ta=*/true, in, false, out, out, beta);
    col_sum(c, db, dz, n, out, beta);
  }
  if (!dx) return;
  gemm(c, dx, dz, w, n, in, out, false, out, /*tb=*/true, out, in, T(0));
  if (prev_drop) {
    MLP_CHECK(prev_a && prev_act != Act::Softmax, "a dropout mask needs the previous layer's activation");
    dropout_backward(c, dx, prev_z ? prev_z : prev_a, prev_a, dx, n, in, prev_act, prev_alpha, *prev_drop);
    return;
  }
  if (prev_act != Act::Identity && prev_act != Act::Softmax && prev_a)
    activation_backward(c, dx, prev_z ? prev_z : prev_a, prev_a, dx, n, in, prev_act, prev_alpha);
}

template void dense_forward<float>(Context&, float*, float*, const float*, const float*, const float*, idx, idx, idx, Act, float);
template void dense_forward<double>(Context&, double*, double*, const double*, const double*, const double*, idx, idx, idx, Act, double);
template void dense_backward<float>(Context&, float*, float*, float*, const float*, const float*, const float*, idx, idx, idx, float, Act, float, const float*, const float*, const DropSpec<float>*);
template void dense_backward<double>(Context&, double*, double*, double*, const double*, const double*, const double*, idx, idx, idx, double, Act, double, const double*, const double*, const DropSpec<double>*);

}  // namespace mlp::cuda
