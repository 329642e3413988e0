// Dense layer forward and backward on the CPU, composed from the dispatched kernels.
#pragma once
#include "../dropout.hpp"
#include "kernels.hpp"

namespace mlp::cpu {

// x: (n, in)  w: (in, out)  b: (out)  ->  a: (n, out) = act(x w + b); z: (n, out) = x w + b when
// z is non-null (needed for swish's derivative and for losses computed from the logits).
// x_rows, when set, gathers row i of x from row x_rows[i] (a shuffled batch, without a copy).
// packed_w, when set, is w packed by pack_weights (forward), shared by many calls.
// drop, when set, applies dropout to a (z stays unmasked); not with softmax.
template <class T>
void dense_forward(T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act,
                   T alpha, const idx* x_rows = nullptr, const T* packed_w = nullptr,
                   const DropMask<T>* drop = nullptr);

// dz: (n, out) is dL/dz of this layer.  x: (n, in)  w: (in, out)
//   dw (in, out) = beta dw + x^T dz;  db (out) = beta db + sum_n dz;
//   dx (n, in)   = dz w^T, skipped when dx is null. When prev_act is given, the previous layer's
//   derivative is fused into dx's write-out, so dx becomes that layer's dL/dz (prev_z, prev_a: (n, in)).
//   packed_wt, when set, is w^T packed by pack_weights (backward). prev_drop, when set, is the
//   previous layer's dropout mask (prev_a is then the masked activation, and needed).
template <class T>
void dense_backward(T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    T beta, const idx* x_rows = nullptr, Act prev_act = Act::Identity,
                    T prev_alpha = T(0), const T* prev_z = nullptr, const T* prev_a = nullptr,
                    const T* packed_wt = nullptr, const DropMask<T>* prev_drop = nullptr);

// Values needed to pack w (in, out) for the forward pass (transposed: for the backward pass).
template <class T>
idx packed_weights_size(idx in, idx out, bool transposed);
template <class T>
void pack_weights(T* dst, const T* w, idx in, idx out, bool transposed);

}  // namespace mlp::cpu
