// Argument checks shared by the binding files: every array that crosses into csrc/ is asserted to
// be C-contiguous, of the expected float dtype and shape, and raises TypeError/ValueError otherwise.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common.hpp"

namespace mlp::pyarg {

namespace py = pybind11;

// Float type of an array: 4 or 8, else TypeError naming the argument.
inline int float_size(const py::array& a, const char* name) {
  const char k = a.dtype().kind();
  if (k != 'f' || (a.itemsize() != 4 && a.itemsize() != 8))
    throw py::type_error(std::string(name) + ": expected a float32 or float64 array, got dtype " +
                         std::string(py::str(a.dtype())));
  return int(a.itemsize());
}

// Checked pointer into a C-contiguous array of T with the given ndim (and shape where >= 0).
template <class T>
T* ptr(const py::array& a, const char* name, int ndim, idx d0 = -1, idx d1 = -1);

// As ptr, for arrays written in place.
template <class T>
T* out_ptr(const py::array& a, const char* name, int ndim, idx d0 = -1) {
  T* p = ptr<T>(a, name, ndim, d0);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": expected a writeable array (it is updated in place)");
  return p;
}

template <class T>
T* ptr(const py::array& a, const char* name, int ndim, idx d0, idx d1) {
  if (a.dtype().kind() != 'f' || a.itemsize() != sizeof(T))
    throw py::type_error(std::string(name) + ": expected dtype " + (sizeof(T) == 4 ? "float32" : "float64") +
                         " like the other arrays, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) + "-D array, got " +
                          std::to_string(a.ndim()) + "-D");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (d0 >= 0 && a.shape(0) != d0)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(d0) + " rows, got " +
                          std::to_string(a.shape(0)));
  if (ndim > 1 && d1 >= 0 && a.shape(1) != d1)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(d1) + " columns, got " +
                          std::to_string(a.shape(1)));
  return static_cast<T*>(const_cast<void*>(a.data()));
}

template <class T>
const T* opt_ptr(const py::object& o, const char* name, idx n) {
  if (o.is_none()) return nullptr;
  return ptr<T>(o.cast<py::array>(), name, 1, n);
}

template <class T>
py::array_t<T> empty(idx r, idx c) { return py::array_t<T>({r, c}); }

inline Act to_act(int a) {
  if (!mlp::act_valid(a)) throw py::value_error("act: unknown activation code " + std::to_string(a));
  return Act(a);
}
inline LossKind to_loss(int l) {
  if (!mlp::loss_valid(l)) throw py::value_error("loss: unknown loss code " + std::to_string(l));
  return LossKind(l);
}

// Calls f(T{}) with T the float type of array a.
template <class F>
auto by_dtype(const py::array& a, const char* name, F&& f) {
  return float_size(a, name) == 4 ? f(float{}) : f(double{});
}

inline double weight_sum(const void* w, bool is_f32, idx n) {
  if (!w) return double(n);
  double s = 0.0;
  for (idx i = 0; i < n; ++i) s += is_f32 ? double(static_cast<const float*>(w)[i]) : static_cast<const double*>(w)[i];
  return s;
}

// Checked arguments of the loss kernels: z, a, y (n, c) and optional weights (n) of one dtype.
template <class T>
struct LossInputs {
  const T *z, *a, *y, *w;
  idx n, c;
  double wsum;
  LossInputs(const py::array& z_, const py::array& a_, const py::array& y_, const py::object& sw) {
    z = ptr<T>(z_, "z", 2);
    n = z_.shape(0);
    c = z_.shape(1);
    a = ptr<T>(a_, "a", 2, n, c);
    y = ptr<T>(y_, "y", 2, n, c);
    w = opt_ptr<T>(sw, "sample_weight", n);
    wsum = weight_sum(w, sizeof(T) == 4, n);
    if (!(wsum > 0)) throw py::value_error("sample_weight: must sum to a positive number");
  }
};

// Checked arguments of the dense-layer entry points: x (n, in) and w (in, out) of one dtype.
template <class T>
struct DenseInputs {
  const T *x, *w;
  idx n, in, out;
  DenseInputs(const py::array& x_, const py::array& w_) {
    x = ptr<T>(x_, "x", 2);
    n = x_.shape(0);
    in = x_.shape(1);
    w = ptr<T>(w_, "w", 2, in);
    out = w_.shape(1);
  }
};

// Checked arguments of the optimizer steps: params (n), updated in place, and grads (n) of one dtype.
template <class T>
struct StepInputs {
  T* p;
  const T* g;
  idx n;
  StepInputs(const py::array& p_, const py::array& g_) {
    p = out_ptr<T>(p_, "params", 1);
    n = p_.shape(0);
    g = ptr<T>(g_, "grads", 1, n);
  }
};

}  // namespace mlp::pyarg
