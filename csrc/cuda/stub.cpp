// The CUDA backend of a CPU-only build (MLP_CUDA=OFF, or AUTO without nvcc/cuBLAS): no device is
// ever visible, and anything that would need one raises an error that says the build lacks CUDA.
#include <stdexcept>

#include "api.hpp"

namespace mlp::cuda {

namespace {
[[noreturn]] void no_cuda() {
  throw std::invalid_argument(
      "this build of mlp has no CUDA support (it was compiled without nvcc/cuBLAS; rebuild with "
      "-Ccmake.define.MLP_CUDA=ON)");
}
}  // namespace

bool built() { return false; }
int device_count() { return 0; }
DeviceStatus device_status() { return DeviceStatus{}; }
std::string device_name(int) { no_cuda(); }
std::pair<std::size_t, std::size_t> mem_info(int) { no_cuda(); }
int current_device() { no_cuda(); }
void set_tf32(bool) {}
bool tf32() { return false; }
void set_lt_epilogues(bool) {}
bool lt_epilogues() { return false; }
void set_sync_launches(bool) {}
bool sync_launches() { return false; }
void set_alloc_limit(std::size_t) {}
// Nothing ever runs: every counter stays zero.
Stats stats() { return Stats{}; }
void reset_stats() {}

template <class T>
struct DeviceNetwork<T>::Impl {};

template <class T>
DeviceNetwork<T>::DeviceNetwork(Network<T>&, int) {
  no_cuda();
}
template <class T>
DeviceNetwork<T>::~DeviceNetwork() = default;
template <class T>
int DeviceNetwork<T>::ordinal() const {
  return -1;
}
template <class T>
EpochResult DeviceNetwork<T>::train_epoch(const T*, const T*, const T*, idx, idx, bool, double,
                                          const std::function<bool()>&, std::uintptr_t) {
  no_cuda();
}
template <class T>
void DeviceNetwork<T>::predict(T*, const T*, idx) {
  no_cuda();
}
template <class T>
double DeviceNetwork<T>::loss_and_grad(const T*, const T*, const T*, idx, T*, std::uintptr_t, bool) {
  no_cuda();
}
template <class T>
void DeviceNetwork<T>::release_data() {}

template class DeviceNetwork<float>;
template class DeviceNetwork<double>;

namespace ops {
template <class T>
void gemm(T*, const T*, const T*, idx, idx, idx, bool, bool) { no_cuda(); }
template <class T>
void activation_forward(T*, const T*, idx, idx, Act, T) { no_cuda(); }
template <class T>
void activation_backward(T*, const T*, const T*, const T*, idx, idx, Act, T) { no_cuda(); }
template <class T>
void dense_forward(T*, T*, const T*, const T*, const T*, idx, idx, idx, Act, T) { no_cuda(); }
template <class T>
void dense_backward(T*, T*, T*, const T*, const T*, const T*, idx, idx, idx, Act, T, const T*, const T*) { no_cuda(); }
template <class T>
double loss_forward(const T*, const T*, const T*, const T*, idx, idx, LossKind) { no_cuda(); }
template <class T>
void loss_backward(T*, const T*, const T*, const T*, const T*, idx, idx, LossKind, Act, T, T) { no_cuda(); }
template <class T>
void sgd_step(T*, const T*, T*, idx, T, T, bool) { no_cuda(); }
template <class T>
void adam_step(T*, const T*, T*, T*, idx, T, double, double, T) { no_cuda(); }
template <class T>
void gather_rows(T*, const T*, const idx*, idx, idx, idx) { no_cuda(); }

MLP_OPS_INSTANTIATE(float)
MLP_OPS_INSTANTIATE(double)
}  // namespace ops

}  // namespace mlp::cuda
