// Dense layer forward and backward on the GPU, under the names of csrc/cpu/dense.hpp.
#pragma once
#include "kernels.cuh"

namespace mlp::cuda {

// x: (n, in)  w: (in, out)  b: (out)  ->  z: (n, out) = x w + b, a: (n, out) = act(z).
// Either output may be null: z null keeps only a; a null keeps only the logits z (the training
// loop's output layer, whose loss reads z). z may not equal a.
template <class T>
void dense_forward(Context& c, T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act,
                   T alpha);

// dz: (n, out) is dL/dz of this layer.  x: (n, in)  w: (in, out)
//   dw (in, out) = beta dw + x^T dz;  db (out) = beta db + sum_n dz;
//   dx (n, in)   = dz w^T, skipped when dx is null, then multiplied by the previous layer's
//   derivative prev_act'(prev_z, prev_a) (both (n, in); prev_z may be null but for swish).
//   prev_drop, when set, is the previous layer's dropout mask (prev_a is then the masked
//   activation, and needed): dx becomes keep ? dx * scale * prev_act'(prev_z, prev_a / scale) : 0.
template <class T>
void dense_backward(Context& c, T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    T beta, Act prev_act = Act::Identity, T prev_alpha = T(0), const T* prev_z = nullptr,
                    const T* prev_a = nullptr, const DropSpec<T>* prev_drop = nullptr);

}  // namespace mlp::cuda
