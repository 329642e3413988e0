// The CUDA part of _core: cuda_available / cuda_device_count / cuda_device_name, the TF32 and
// epilogue switches, and the submodule _core.cuda_ops with the CUDA operations under the names and
// arguments of the CPU ones (for the tests that compare them). Arguments are checked as in
// bindings.cpp; in a CPU-only build the operations raise ValueError (csrc/cuda/stub.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/api.hpp"
#include "py_arrays.hpp"

namespace py = pybind11;
using mlp::Act;
using mlp::idx;
using mlp::LossKind;
using namespace mlp::pyarg;
namespace ops = mlp::cuda::ops;

namespace mlp {

void bind_cuda(py::module_& m) {
  m.def("cuda_available", &mlp::cuda::built, "Whether this build has the CUDA kernels (MLP_CUDA).");
  m.def("cuda_device_count", &mlp::cuda::device_count,
        "Visible CUDA devices: 0 without a CUDA build, a driver or a GPU.");
  m.def("cuda_device_name", &mlp::cuda::device_name, py::arg("ordinal") = 0);
  m.def("cuda_set_tf32", &mlp::cuda::set_tf32, py::arg("enabled"),
        "TF32 tensor cores for float32 GEMMs (default off: float32 results then match the CPU).");
  m.def("cuda_tf32", &mlp::cuda::tf32);
  m.def("cuda_set_lt_epilogues", &mlp::cuda::set_lt_epilogues, py::arg("enabled"),
        "cuBLASLt bias/ReLU epilogues (default on); off: GEMM + fused bias+activation kernel.");

  py::module_ o = m.def_submodule("cuda_ops", "CUDA operations on host arrays, as the CPU functions of _core");

  o.def("gemm", [](const py::array& a, const py::array& b, bool ta, bool tb) {
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
        ops::gemm<T>(pc, pa, pb, m_, n, k, ta, tb);
      }
      return std::move(c);
    });
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false);

  o.def("activation_forward", [](const py::array& z, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pz = ptr<T>(z, "z", 2);
      auto a = empty<T>(z.shape(0), z.shape(1));
      ops::activation_forward<T>(a.mutable_data(), pz, z.shape(0), z.shape(1), to_act(act), T(alpha));
      return std::move(a);
    });
  }, py::arg("z"), py::arg("act"), py::arg("alpha"));

  o.def("activation_backward", [](const py::array& z, const py::array& a, const py::array& da, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pz = ptr<T>(z, "z", 2);
      const idx r = z.shape(0), c = z.shape(1);
      const T* pa = ptr<T>(a, "a", 2, r, c);
      const T* pg = ptr<T>(da, "da", 2, r, c);
      auto dz = empty<T>(r, c);
      ops::activation_backward<T>(dz.mutable_data(), pz, pa, pg, r, c, to_act(act), T(alpha));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("da"), py::arg("act"), py::arg("alpha"));

  // want_z=False asks for the activation alone, the path of hidden layers (ReLU: one cuBLASLt
  // matmul with the bias+ReLU epilogue); z is then None.
  o.def("dense_forward", [](const py::array& x, const py::array& w, const py::array& b, int act, double alpha,
                            bool want_z) {
    return by_dtype(x, "x", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* px = ptr<T>(x, "x", 2);
      const idx n = x.shape(0), in = x.shape(1);
      const T* pw = ptr<T>(w, "w", 2, in);
      const idx out = w.shape(1);
      const T* pb = ptr<T>(b, "b", 1, out);
      auto z = empty<T>(n, out);
      auto a = empty<T>(n, out);
      T* pz = z.mutable_data();
      T* pa = a.mutable_data();
      const Act ac = to_act(act);
      {
        py::gil_scoped_release rel;
        ops::dense_forward<T>(want_z ? pz : nullptr, pa, px, pw, pb, n, in, out, ac, T(alpha));
      }
      return py::make_tuple(want_z ? py::object(z) : py::none(), a);
    });
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"), py::arg("alpha"), py::arg("want_z") = true);

  // As _core.dense_backward; prev_* (optional) apply the previous layer's derivative to dx.
  o.def("dense_backward", [](const py::array& x, const py::array& w, const py::array& z, const py::array& a,
                             const py::array& g, int act, double alpha, bool g_is_dz, bool need_dx, int prev_act,
                             double prev_alpha, const py::object& prev_z, const py::object& prev_a) {
    return by_dtype(x, "x", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* px = ptr<T>(x, "x", 2);
      const idx n = x.shape(0), in = x.shape(1);
      const T* pw = ptr<T>(w, "w", 2, in);
      const idx out = w.shape(1);
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
          ops::activation_backward<T>(dz.mutable_data(), pz, pa, pg, n, out, ac, T(alpha));
          pdz = dz.data();
        }
        ops::dense_backward<T>(dw.mutable_data(), db.mutable_data(), pdx, pdz, px, pw, n, in, out, pac,
                               T(prev_alpha), ppz, ppa);
      }
      return py::make_tuple(dw, db, dx);
    });
  }, py::arg("x"), py::arg("w"), py::arg("z"), py::arg("a"), py::arg("g"), py::arg("act"), py::arg("alpha"),
     py::arg("g_is_dz"), py::arg("need_dx"), py::arg("prev_act") = 0, py::arg("prev_alpha") = 0.0,
     py::arg("prev_z") = py::none(), py::arg("prev_a") = py::none());

  o.def("loss_forward", [](const py::array& z, const py::array& a, const py::array& y, int loss,
                           const py::object& sw, double scale) {
    return by_dtype(z, "z", [&](auto tag) -> double {
      using T = decltype(tag);
      const LossInputs<T> in(z, a, y, sw);
      return scale * ops::loss_forward<T>(in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss)) / in.wsum;
    });
  }, py::arg("z"), py::arg("a"), py::arg("y"), py::arg("loss"), py::arg("sample_weight"), py::arg("scale"));

  o.def("loss_backward", [](const py::array& z, const py::array& a, const py::array& y, int loss, int act,
                            double alpha, const py::object& sw, double scale) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const LossInputs<T> in(z, a, y, sw);
      if (to_loss(loss) == LossKind::Mse && to_act(act) == Act::Softmax)
        throw py::value_error("act: softmax goes only with categorical cross-entropy, not with mse");
      auto dz = empty<T>(in.n, in.c);
      ops::loss_backward<T>(dz.mutable_data(), in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss), to_act(act),
                            T(alpha), T(scale / in.wsum));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("y"), py::arg("loss"), py::arg("act"), py::arg("alpha"),
     py::arg("sample_weight"), py::arg("scale"));

  o.def("sgd_step", [](const py::array& p, const py::array& g, const py::array& v, double lr, double mu, bool nesterov) {
    by_dtype(p, "params", [&](auto tag) {
      using T = decltype(tag);
      T* pp = out_ptr<T>(p, "params", 1);
      const idx n = p.shape(0);
      const T* pg = ptr<T>(g, "grads", 1, n);
      T* pv = out_ptr<T>(v, "velocity", 1, n);
      ops::sgd_step<T>(pp, pg, pv, n, T(lr), T(mu), nesterov);
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"));

  o.def("adam_step", [](const py::array& p, const py::array& g, const py::array& mm, const py::array& v, double lr,
                        double b1, double b2, double eps, long long t) {
    if (t < 1) throw py::value_error("t: the Adam step number starts at 1");
    by_dtype(p, "params", [&](auto tag) {
      using T = decltype(tag);
      T* pp = out_ptr<T>(p, "params", 1);
      const idx n = p.shape(0);
      const T* pg = ptr<T>(g, "grads", 1, n);
      T* pm = out_ptr<T>(mm, "m", 1, n);
      T* pv = out_ptr<T>(v, "v", 1, n);
      const double lr_t = lr * std::sqrt(1.0 - std::pow(b2, double(t))) / (1.0 - std::pow(b1, double(t)));
      ops::adam_step<T>(pp, pg, pm, pv, n, T(lr_t), T(b1), T(b2), T(eps));
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("t"));

  o.def("gather_rows", [](const py::array& x, const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& rows) {
    return by_dtype(x, "x", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* px = ptr<T>(x, "x", 2);
      const idx n = x.shape(0), cols = x.shape(1);
      if (rows.ndim() != 1) throw py::value_error("rows: expected a 1-D array");
      const idx count = rows.shape(0);
      const idx* pr = reinterpret_cast<const idx*>(rows.data());
      for (idx i = 0; i < count; ++i)
        if (pr[i] < 0 || pr[i] >= n) throw py::value_error("rows: index " + std::to_string(pr[i]) + " out of range");
      auto out = empty<T>(count, cols);
      ops::gather_rows<T>(out.mutable_data(), px, pr, count, n, cols);
      return std::move(out);
    });
  }, py::arg("x"), py::arg("rows"));
}

}  // namespace mlp
