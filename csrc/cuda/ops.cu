// Single CUDA operations on host arrays, for the tests that hold each kernel against the CPU one:
// upload the inputs to device 0, run the operation, download the result. Thread-safe: calls
// from several threads take turns on the one shared context.
#include <mutex>
#include <vector>

#include "api.hpp"
#include "dense.cuh"

namespace mlp::cuda::ops {

namespace {

// A device copy of a host array (or uninitialized room for a result). Named d_<host name>: a d_
// prefix here means "on the device"; a gradient keeps its d (d_dz is the device copy of dz).
template <class T>
struct Dev {
  Buffer<T> buf;
  Dev(Context& c, const T* host, idx n) {
    buf.resize(std::size_t(n > 0 ? n : 1));
    if (host && n > 0)
      MLP_CUDA_CHECK(cudaMemcpyAsync(buf.data(), host, sizeof(T) * n, cudaMemcpyHostToDevice, c.stream));
  }
  T* get() { return buf.data(); }
  void to_host(Context& c, T* host, idx n) {
    if (host && n > 0)
      MLP_CUDA_CHECK(cudaMemcpyAsync(host, buf.data(), sizeof(T) * n, cudaMemcpyDeviceToHost, c.stream));
  }
};

// One context for all the operations of a process (handles are costly to create), never
// destroyed: at exit the CUDA runtime may already be gone. Its plan map, ones vector and stream
// are shared, and the operations run without the GIL: each holds the lock for its whole call
// (uploads, kernels, downloads and the release of its buffers).
std::mutex& ops_mutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}
Context& context() {
  static Context* c = new Context(0);
  return *c;
}

// An operation's hold on the shared context: the lock, then device 0 current. Declared before
// the operation's buffers, so that they are freed under the lock.
struct Scope {
  std::lock_guard<std::mutex> lock{ops_mutex()};
  Context& c = context();
  DeviceGuard guard{c.device};
};

}  // namespace

template <class T>
void gemm(T* c_out, const T* a, const T* b, idx m, idx n, idx k, bool ta, bool tb) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_a(c, a, m * k), d_b(c, b, k * n), d_c(c, nullptr, m * n);
  cuda::gemm<T>(c, d_c.get(), d_a.get(), d_b.get(), m, n, k, ta, ta ? m : k, tb, tb ? k : n, n, T(0));
  d_c.to_host(c, c_out, m * n);
  c.sync();
}

template <class T>
void activation_forward(T* a, const T* z, idx rows, idx cols, Act act, T alpha) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_z(c, z, rows * cols), d_a(c, nullptr, rows * cols);
  cuda::activation_forward<T>(c, d_a.get(), d_z.get(), rows, cols, act, alpha);
  d_a.to_host(c, a, rows * cols);
  c.sync();
}

template <class T>
void activation_backward(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act, T alpha) {
  Scope scope;
  Context& c = scope.c;
  const idx n = rows * cols;
  Dev<T> d_z(c, z, n), d_a(c, a, n), d_da(c, da, n), d_dz(c, nullptr, n);
  cuda::activation_backward<T>(c, d_dz.get(), d_z.get(), d_a.get(), d_da.get(), rows, cols, act, alpha);
  d_dz.to_host(c, dz, n);
  c.sync();
}

template <class T>
void dense_forward(T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act, T alpha) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_x(c, x, n * in), d_w(c, w, in * out), d_b(c, b, out), d_z(c, nullptr, n * out),
      d_a(c, nullptr, n * out);
  cuda::dense_forward<T>(c, z ? d_z.get() : nullptr, a ? d_a.get() : nullptr, d_x.get(), d_w.get(), d_b.get(), n,
                         in, out, act, alpha);
  d_z.to_host(c, z, n * out);
  d_a.to_host(c, a, n * out);
  c.sync();
}

template <class T>
void dense_backward(T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                    Act prev_act, T prev_alpha, const T* prev_z, const T* prev_a) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_dz(c, dz, n * out), d_x(c, x, n * in), d_w(c, w, in * out), d_pz(c, prev_z, n * in),
      d_pa(c, prev_a, n * in), d_dw(c, nullptr, in * out), d_db(c, nullptr, out), d_dx(c, nullptr, n * in);
  cuda::dense_backward<T>(c, d_dw.get(), d_db.get(), dx ? d_dx.get() : nullptr, d_dz.get(), d_x.get(), d_w.get(),
                          n, in, out, T(0), prev_act, prev_alpha, prev_z ? d_pz.get() : nullptr,
                          prev_a ? d_pa.get() : nullptr);
  d_dw.to_host(c, dw, in * out);
  d_db.to_host(c, db, out);
  d_dx.to_host(c, dx, n * in);
  c.sync();
}

template <class T>
double loss_forward(const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind kind) {
  Scope scope;
  Context& c = scope.c;
  const idx n = rows * cols;
  Dev<T> d_z(c, z, n), d_a(c, a, n), d_y(c, y, n), d_w(c, w, rows);
  Buffer<double> part, total;
  part.resize(kMaxBlocks);
  total.resize(1);
  cuda::loss<T>(c, part.data(), nullptr, d_z.get(), a ? d_a.get() : nullptr, d_y.get(), w ? d_w.get() : nullptr,
                nullptr, rows, cols, kind, Act::Identity, T(0), T(0), nullptr);
  sum_partials(c, total.data(), part.data(), int(loss_blocks(rows)), false);
  double out = 0.0;
  MLP_CUDA_CHECK(cudaMemcpyAsync(&out, total.data(), sizeof(double), cudaMemcpyDeviceToHost, c.stream));
  c.sync();
  return out;
}

template <class T>
void loss_backward(T* dz, const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind kind, Act act,
                   T alpha, T coef) {
  Scope scope;
  Context& c = scope.c;
  const idx n = rows * cols;
  Dev<T> d_z(c, z, n), d_a(c, a, n), d_y(c, y, n), d_w(c, w, rows), d_dz(c, nullptr, n);
  cuda::loss<T>(c, nullptr, d_dz.get(), d_z.get(), a ? d_a.get() : nullptr, d_y.get(), w ? d_w.get() : nullptr,
                nullptr, rows, cols, kind, act, alpha, coef, nullptr);
  d_dz.to_host(c, dz, n);
  c.sync();
}

template <class T>
void sgd_step(T* p, const T* g_host, T* v, idx n, T lr, T mu, bool nesterov) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_p(c, p, n), d_g(c, g_host, n), d_v(c, v, n);
  StepArgs<T> s;
  s.g = d_g.get();
  s.p = d_p.get();
  s.m = d_v.get();
  s.n = n;
  s.kind = OptKind::Sgd;
  s.lr = lr;
  s.mu = mu;
  s.nesterov = nesterov;
  optimizer_delta<T>(c, s);
  add_inplace<T>(c, d_p.get(), d_g.get(), n, nullptr, nullptr);
  d_p.to_host(c, p, n);
  d_v.to_host(c, v, n);
  c.sync();
}

template <class T>
void adam_step(T* p, const T* g_host, T* m, T* v, idx n, T lr_t, double b1, double b2, T eps) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_p(c, p, n), d_g(c, g_host, n), d_m(c, m, n), d_v(c, v, n);
  StepArgs<T> s;
  s.g = d_g.get();
  s.p = d_p.get();
  s.m = d_m.get();
  s.v = d_v.get();
  s.n = n;
  s.kind = OptKind::Adam;
  s.lr = lr_t;
  s.b1 = T(b1);
  s.c1 = T(1.0 - b1);
  s.b2 = T(b2);
  s.c2 = T(1.0 - b2);
  s.eps = eps;
  optimizer_delta<T>(c, s);
  add_inplace<T>(c, d_p.get(), d_g.get(), n, nullptr, nullptr);
  d_p.to_host(c, p, n);
  d_m.to_host(c, m, n);
  d_v.to_host(c, v, n);
  c.sync();
}

template <class T>
void gather_rows(T* out, const T* x, const idx* rows, idx count, idx n, idx cols) {
  Scope scope;
  Context& c = scope.c;
  Dev<T> d_x(c, x, n * cols), d_out(c, nullptr, count * cols);
  Buffer<idx> d_rows;
  d_rows.resize(std::size_t(count > 0 ? count : 1));
  if (count > 0)
    MLP_CUDA_CHECK(cudaMemcpyAsync(d_rows.data(), rows, sizeof(idx) * count, cudaMemcpyHostToDevice, c.stream));
  cuda::gather_rows<T>(c, d_out.get(), d_x.get(), d_rows.data(), count, cols);
  d_out.to_host(c, out, count * cols);
  c.sync();
}

MLP_OPS_INSTANTIATE(float)
MLP_OPS_INSTANTIATE(double)

}  // namespace mlp::cuda::ops
