// The per-operation entry points on host arrays (gemm, activations, dense layers, losses,
// optimizer steps), bound once for each backend: _core takes the CPU kernels (bindings.cpp),
// _core.cuda_ops the CUDA operations (bindings_cuda.cpp). The arguments are checked and unpacked
// here, alike for both; Ops<T> only runs the operation, with the signatures of mlp::cuda::ops
// (csrc/cuda/api.hpp), and says by fused_paths whether the module also offers the training loop's
// fused paths: dense_forward(want_z=False) and dense_backward(prev_act, prev_alpha, prev_z, prev_a).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "py_arrays.hpp"

namespace mlp::pyarg {

// (z, a) = dense layer forward; z is None when want_z is false.
template <template <class> class Ops>
py::object dense_forward(const py::array& x, const py::array& w, const py::array& b, int act, double alpha,
                         bool want_z) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    const DenseInputs<T> d(x, w);
    const T* pb = ptr<T>(b, "b", 1, d.out);
    auto z = empty<T>(d.n, d.out);
    auto a = empty<T>(d.n, d.out);
    T* pz = z.mutable_data();
    T* pa = a.mutable_data();
    const Act ac = to_act(act);
    {
      py::gil_scoped_release rel;
      Ops<T>::dense_forward(want_z ? pz : nullptr, pa, d.x, d.w, pb, d.n, d.in, d.out, ac, T(alpha));
    }
    return py::make_tuple(want_z ? py::object(z) : py::none(), a);
  });
}

// (dw, db, dx or None); prev_* (optional) apply the previous layer's derivative to dx.
template <template <class> class Ops>
py::object dense_backward(const py::array& x, const py::array& w, const py::array& z, const py::array& a,
                          const py::array& g, int act, double alpha, bool g_is_dz, bool need_dx, int prev_act,
                          double prev_alpha, const py::object& prev_z, const py::object& prev_a) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    const DenseInputs<T> d(x, w);
    const idx n = d.n, in = d.in, out = d.out;
    const T* pz = ptr<T>(z, "z", 2, n, out);
    const T* pa = ptr<T>(a, "a", 2, n, out);
    const T* pg = ptr<T>(g, "g", 2, n, out);
    const T* ppz = prev_z.is_none() ? nullptr : ptr<T>(prev_z.cast<py::array>(), "prev_z", 2, n, in);
    const T* ppa = prev_a.is_none() ? nullptr : ptr<T>(prev_a.cast<py::array>(), "prev_a", 2, n, in);
    auto dz = empty<T>(n, out);
    auto dw = empty<T>(in, out);
    auto db = py::array_t<T>(out);
    py::object dx = py::none();
    T* pdx = nullptr;
    if (need_dx) {
      auto dxa = empty<T>(n, in);
      pdx = dxa.mutable_data();
      dx = dxa;
    }
    const Act ac = to_act(act), pac = to_act(prev_act);
    {
      py::gil_scoped_release rel;
      const T* pdz = pg;
      if (!g_is_dz) {
        Ops<T>::activation_backward(dz.mutable_data(), pz, pa, pg, n, out, ac, T(alpha));
        pdz = dz.data();
      }
      Ops<T>::dense_backward(dw.mutable_data(), db.mutable_data(), pdx, pdz, d.x, d.w, n, in, out, pac,
                             T(prev_alpha), ppz, ppa);
    }
    return py::make_tuple(dw, db, dx);
  });
}

template <template <class> class Ops>
void bind_ops(py::module_& m) {
  m.def("gemm", [](const py::array& a, const py::array& b, bool ta, bool tb) {
    return by_dtype(a, "a", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pa = ptr<T>(a, "a", 2);
      const T* pb = ptr<T>(b, "b", 2);
      const idx m_ = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
      const idx kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
      if (k != kb) throw py::value_error("gemm: inner dimensions differ (" + std::to_string(k) + " vs " + std::to_string(kb) + ")");
      auto c = empty<T>(m_, n);
      T* pc = c.mutable_data();
      {
        py::gil_scoped_release rel;
        Ops<T>::gemm(pc, pa, pb, m_, n, k, ta, tb);
      }
      return std::move(c);
    });
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false);

  m.def("activation_forward", [](const py::array& z, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pz = ptr<T>(z, "z", 2);
      auto a = empty<T>(z.shape(0), z.shape(1));
      Ops<T>::activation_forward(a.mutable_data(), pz, z.shape(0), z.shape(1), to_act(act), T(alpha));
      return std::move(a);
    });
  }, py::arg("z"), py::arg("act"), py::arg("alpha"));

  m.def("activation_backward", [](const py::array& z, const py::array& a, const py::array& da, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pz = ptr<T>(z, "z", 2);
      const idx r = z.shape(0), c = z.shape(1);
      const T* pa = ptr<T>(a, "a", 2, r, c);
      const T* pg = ptr<T>(da, "da", 2, r, c);
      auto dz = empty<T>(r, c);
      Ops<T>::activation_backward(dz.mutable_data(), pz, pa, pg, r, c, to_act(act), T(alpha));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("da"), py::arg("act"), py::arg("alpha"));

  if constexpr (Ops<float>::fused_paths) {
    // want_z=False asks for the activation alone, the path of hidden layers (CUDA ReLU: one cuBLASLt
    // matmul with the bias+ReLU epilogue); z is then None.
    m.def("dense_forward", &dense_forward<Ops>, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"),
          py::arg("alpha"), py::arg("want_z") = true);
    m.def("dense_backward", &dense_backward<Ops>, py::arg("x"), py::arg("w"), py::arg("z"), py::arg("a"),
          py::arg("g"), py::arg("act"), py::arg("alpha"), py::arg("g_is_dz"), py::arg("need_dx"),
          py::arg("prev_act") = 0, py::arg("prev_alpha") = 0.0, py::arg("prev_z") = py::none(),
          py::arg("prev_a") = py::none());
  } else {
    m.def("dense_forward", [](const py::array& x, const py::array& w, const py::array& b, int act, double alpha) {
      return dense_forward<Ops>(x, w, b, act, alpha, true);
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"), py::arg("alpha"));
    m.def("dense_backward", [](const py::array& x, const py::array& w, const py::array& z, const py::array& a,
                               const py::array& g, int act, double alpha, bool g_is_dz, bool need_dx) {
      return dense_backward<Ops>(x, w, z, a, g, act, alpha, g_is_dz, need_dx, 0, 0.0, py::none(), py::none());
    }, py::arg("x"), py::arg("w"), py::arg("z"), py::arg("a"), py::arg("g"), py::arg("act"), py::arg("alpha"),
       py::arg("g_is_dz"), py::arg("need_dx"));
  }

  m.def("loss_forward", [](const py::array& z, const py::array& a, const py::array& y, int loss,
                           const py::object& sw, double scale) {
    return by_dtype(z, "z", [&](auto tag) -> double {
      using T = decltype(tag);
      const LossInputs<T> in(z, a, y, sw);
      return scale * Ops<T>::loss_forward(in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss)) / in.wsum;
    });
  }, py::arg("z"), py::arg("a"), py::arg("y"), py::arg("loss"), py::arg("sample_weight"), py::arg("scale"));

  m.def("loss_backward", [](const py::array& z, const py::array& a, const py::array& y, int loss, int act,
                            double alpha, const py::object& sw, double scale) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const LossInputs<T> in(z, a, y, sw);
      if (to_loss(loss) == LossKind::Mse && to_act(act) == Act::Softmax)
        throw py::value_error("act: softmax goes only with categorical cross-entropy, not with mse");
      auto dz = empty<T>(in.n, in.c);
      Ops<T>::loss_backward(dz.mutable_data(), in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss), to_act(act),
                            T(alpha), T(scale / in.wsum));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("y"), py::arg("loss"), py::arg("act"), py::arg("alpha"),
     py::arg("sample_weight"), py::arg("scale"));

  m.def("sgd_step", [](const py::array& p, const py::array& g, const py::array& v, double lr, double mu, bool nesterov) {
    by_dtype(p, "params", [&](auto tag) {
      using T = decltype(tag);
      const StepInputs<T> s(p, g);
      T* pv = out_ptr<T>(v, "velocity", 1, s.n);
      Ops<T>::sgd_step(s.p, s.g, pv, s.n, T(lr), T(mu), nesterov);
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"));

  m.def("adam_step", [](const py::array& p, const py::array& g, const py::array& mm, const py::array& v, double lr,
                        double b1, double b2, double eps, long long t) {
    if (t < 1) throw py::value_error("t: the Adam step number starts at 1");
    by_dtype(p, "params", [&](auto tag) {
      using T = decltype(tag);
      const StepInputs<T> s(p, g);
      T* pm = out_ptr<T>(mm, "m", 1, s.n);
      T* pv = out_ptr<T>(v, "v", 1, s.n);
      const double lr_t = lr * std::sqrt(1.0 - std::pow(b2, double(t))) / (1.0 - std::pow(b1, double(t)));
      Ops<T>::adam_step(s.p, s.g, pm, pv, s.n, T(lr_t), b1, b2, T(eps));
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("t"));
}

}  // namespace mlp::pyarg
