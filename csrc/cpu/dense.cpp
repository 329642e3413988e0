// Dense layer: forward Y = act(X W + b) with bias and activation in the GEMM's write-out;
// backward dW = X^T dZ, db = sum dZ, dX = dZ W^T with the previous layer's derivative fused.
#include "dense.hpp"

namespace mlp::cpu {

template <class T>
void dense_forward(T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act,
                   T alpha, const idx* x_rows, const T* packed_w, const DropMask<T>* drop) {
  const Kernels<T>& k = kernels<T>();
  GemmArgs<T> g;
  g.m = n; g.n = out; g.k = in;
  g.a = x; g.lda = in; g.a_rows = x_rows;
  g.b = w; g.ldb = out; g.packed_b = packed_w;
  g.epi = Epi::BiasAct; g.bias = b; g.alpha = alpha;
  if (drop) {
    MLP_CHECK(act != Act::Softmax, "dropout cannot follow a softmax");
    g.drop_keys = drop->keys; g.drop_threshold = drop->threshold; g.drop_scale = drop->scale;
  }
  if (act == Act::Softmax) {
    // Softmax needs whole rows: write the logits, then normalize each row.
    g.act = Act::Identity;
    g.c = z ? z : a; g.ldc = out;
    k.gemm(g);
    k.activation_forward(a, z ? z : a, n, out, Act::Softmax, alpha);
    return;
  }
  g.act = act;
  if (z) {
    g.c = z; g.ldc = out; g.a_out = a; g.ld_aout = out;
  } else {
    g.c = a; g.ldc = out;
  }
  k.gemm(g);
}

template <class T>
void dense_backward(T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    T beta, const idx* x_rows, Act prev_act, T prev_alpha, const T* prev_z,
                    const T* prev_a, const T* packed_wt, const DropMask<T>* prev_drop) {
  const Kernels<T>& k = kernels<T>();
  GemmArgs<T> g;  // dw = x^T dz
  g.m = in; g.n = out; g.k = n;
  g.a = x; g.lda = in; g.trans_a = true; g.a_rows = x_rows;
  g.b = dz; g.ldb = out;
  g.c = dw; g.ldc = out; g.beta = beta;
  k.gemm(g);
  k.col_sum(db, dz, n, out, beta);
  if (!dx) return;
  GemmArgs<T> h;  // dx = dz w^T (then * prev_act'(z, a))
  h.m = n; h.n = in; h.k = out;
  h.a = dz; h.lda = out;
  h.b = w; h.ldb = out; h.trans_b = true; h.packed_b = packed_wt;
  h.c = dx; h.ldc = in;
  if ((prev_act != Act::Identity || prev_drop) && prev_act != Act::Softmax && prev_a) {
    h.epi = Epi::Deriv; h.act = prev_act; h.alpha = prev_alpha;
    h.deriv_z = prev_z ? prev_z : prev_a; h.deriv_a = prev_a; h.ld_deriv = in;
    if (prev_drop) {
      h.drop_keys = prev_drop->keys; h.drop_threshold = prev_drop->threshold; h.drop_scale = prev_drop->scale;
    }
  }
  MLP_CHECK(!prev_drop || h.epi == Epi::Deriv, "a dropout mask needs the previous layer's activation");
  k.gemm(h);
}

template <class T>
static GemmArgs<T> weight_operand(const T* w, idx in, idx out, bool transposed) {
  GemmArgs<T> g;  // forward: op(B) = w (in x out); backward: op(B) = w^T (out x in)
  g.b = w; g.ldb = out; g.trans_b = transposed;
  g.k = transposed ? out : in;
  g.n = transposed ? in : out;
  return g;
}

template <class T>
idx packed_weights_size(idx in, idx out, bool transposed) {
  const auto g = weight_operand<T>(nullptr, in, out, transposed);
  return kernels<T>().packed_b_size(g.k, g.n);
}

template <class T>
void pack_weights(T* dst, const T* w, idx in, idx out, bool transposed) {
  kernels<T>().pack_b_all(dst, weight_operand<T>(w, in, out, transposed));
}

template void dense_forward<float>(float*, float*, const float*, const float*, const float*, idx, idx, idx, Act, float,
                                   const idx*, const float*, const DropMask<float>*);
template void dense_forward<double>(double*, double*, const double*, const double*, const double*, idx, idx, idx, Act,
                                    double, const idx*, const double*, const DropMask<double>*);
template void dense_backward<float>(float*, float*, float*, const float*, const float*, const float*, idx, idx, idx,
                                    float, const idx*, Act, float, const float*, const float*, const float*,
                                    const DropMask<float>*);
template void dense_backward<double>(double*, double*, double*, const double*, const double*, const double*, idx, idx,
                                     idx, double, const idx*, Act, double, const double*, const double*,
                                     const double*, const DropMask<double>*);
template idx packed_weights_size<float>(idx, idx, bool);
template idx packed_weights_size<double>(idx, idx, bool);
template void pack_weights<float>(float*, const float*, idx, idx, bool);
template void pack_weights<double>(double*, const double*, idx, idx, bool);

}  // namespace mlp::cpu
