// Collects this instruction set's kernels into a Kernels<T> table for dispatch.cpp.
#include "isa.hpp"
#include "kernels.hpp"

namespace mlp::cpu::MLP_ISA {

template <class T> void gemm(const GemmArgs<T>&);
template <class T> idx packed_b_size(idx, idx);
template <class T> void pack_b_all(T*, const GemmArgs<T>&);
template <class T> void activation_forward(T*, const T*, idx, idx, Act, T);
template <class T> void activation_backward(T*, const T*, const T*, const T*, idx, idx, Act, T);
template <class T> double loss_forward(const T*, const T*, const T*, const T*, idx, idx, LossKind);
template <class T> void loss_backward(T*, const T*, const T*, const T*, const T*, idx, idx, LossKind, Act, T, T);
template <class T> void col_sum(T*, const T*, idx, idx, T);
template <class T> void sum_buffers(T*, const T* const*, int, idx);
template <class T> double sum_squares(const T*, idx);
template <class T> bool sgd_delta(T*, const T*, const T*, T*, idx, T, T, bool, T, T, T);
template <class T> bool adam_delta(T*, const T*, const T*, T*, T*, idx, T, T, T, T, T, T, T, T, T);
template <class T> void add_inplace(T*, const T*, idx);
template <class T> const char* gemm_description();

template <class T>
Kernels<T> make_kernels() {
  Kernels<T> k;
  k.gemm = &gemm<T>;
  k.packed_b_size = &packed_b_size<T>;
  k.pack_b_all = &pack_b_all<T>;
  k.activation_forward = &activation_forward<T>;
  k.activation_backward = &activation_backward<T>;
  k.loss_forward = &loss_forward<T>;
  k.loss_backward = &loss_backward<T>;
  k.col_sum = &col_sum<T>;
  k.sum_buffers = &sum_buffers<T>;
  k.sum_squares = &sum_squares<T>;
  k.sgd_delta = &sgd_delta<T>;
  k.adam_delta = &adam_delta<T>;
  k.add_inplace = &add_inplace<T>;
  k.gemm_name = gemm_description<T>();
  return k;
}
template Kernels<float> make_kernels<float>();
template Kernels<double> make_kernels<double>();

}  // namespace mlp::cpu::MLP_ISA

#if defined(MLP_ALIAS_ISAS)
// Non-x86 builds have only the baseline table; the wider names return it (never chosen anyway).
namespace mlp::cpu::avx2 {
template <class T> Kernels<T> make_kernels() { return baseline::make_kernels<T>(); }
template Kernels<float> make_kernels<float>();
template Kernels<double> make_kernels<double>();
}  // namespace mlp::cpu::avx2
namespace mlp::cpu::avx512 {
template <class T> Kernels<T> make_kernels() { return baseline::make_kernels<T>(); }
template Kernels<float> make_kernels<float>();
template Kernels<double> make_kernels<double>();
}  // namespace mlp::cpu::avx512
#endif
