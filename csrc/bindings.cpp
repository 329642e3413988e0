// PYBIND11_MODULE(_core): converts and checks arguments, releases the GIL, calls into csrc/.
// Every array is asserted to be C-contiguous, of the expected dtype and shape; mlp/_validation.py
// has already converted user input, so a failure here is a bug upstream and raises, never crashes.
#include <pybind11/functional.h>
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "cpu/dense.hpp"
#include "cpu/kernels.hpp"
#include "cuda/api.hpp"
#include "network.hpp"
#include "py_arrays.hpp"

namespace py = pybind11;
using mlp::Act;
using mlp::idx;
using mlp::LossKind;
using namespace mlp::pyarg;

namespace mlp {
void bind_cuda(py::module_& m);  // bindings_cuda.cpp
}

namespace {

// The Python-facing network: one of Network<float> / Network<double>, and, once moved to a GPU,
// its device side (which then runs train_epoch, predict and the losses).
struct PyNetwork {
  std::unique_ptr<mlp::Network<float>> f;
  std::unique_ptr<mlp::Network<double>> d;
  std::unique_ptr<mlp::cuda::DeviceNetwork<float>> gpu_f;
  std::unique_ptr<mlp::cuda::DeviceNetwork<double>> gpu_d;
  // The arrays whose copy the device keeps (held, so that their memory cannot be reused while
  // the key stands for them), and the key that names them.
  py::object data_x, data_y, data_sw;
  std::uintptr_t data_key = 0, keys_made = 0;

  template <class F>
  auto visit(F&& fn) { return f ? fn(*f) : fn(*d); }
  std::string dtype() const { return f ? "float32" : "float64"; }

  // The device side for dtype T, or null on the CPU.
  template <class T>
  mlp::cuda::DeviceNetwork<T>* gpu() {
    if constexpr (sizeof(T) == 4) return gpu_f.get();
    else return gpu_d.get();
  }
  int device() const { return gpu_f ? gpu_f->ordinal() : gpu_d ? gpu_d->ordinal() : -1; }
  void to_device(int ordinal) {
    if (ordinal == device()) return;
    release_data();
    gpu_f.reset();
    gpu_d.reset();
    if (ordinal < 0) return;
    if (f) gpu_f = std::make_unique<mlp::cuda::DeviceNetwork<float>>(*f, ordinal);
    else gpu_d = std::make_unique<mlp::cuda::DeviceNetwork<double>>(*d, ordinal);
  }
  // The key under which the device may keep (x, y, sw): the same objects as last time, the same key.
  std::uintptr_t key_for(const py::object& x, const py::object& y, const py::object& sw) {
    if (!(data_key && data_x.is(x) && data_y.is(y) && data_sw.is(sw))) {
      data_x = x;
      data_y = y;
      data_sw = sw;
      data_key = ++keys_made;
    }
    return data_key;
  }
  void release_data() {
    {
      // Without the GIL: a train_epoch in another thread may hold the device and want the GIL.
      py::gil_scoped_release rel;
      if (gpu_f) gpu_f->release_data();
      if (gpu_d) gpu_d->release_data();
    }
    data_x = data_y = data_sw = py::object();
    data_key = 0;
  }
};

// Bytes of physical memory, or 0 where the OS does not say.
double physical_memory() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return double(pages) * double(page);
#endif
  return 0.0;
}

// mlp/_validation.py's check_network_size refuses a network that could never fit in memory;
// this backstop refuses one whose parameters alone exceed it, before anything is allocated.
void check_network_memory(const std::vector<idx>& sizes, double value_bytes) {
  double n = 0.0;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) n += double(sizes[i]) * double(sizes[i + 1]) + double(sizes[i + 1]);
  const double limit = physical_memory();
  if (limit > 0 && n * value_bytes > limit) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "sizes: the network's %.4g parameters need %.4g GiB, more than this machine's %.4g GiB",
                  n, n * value_bytes / double(1 << 30), limit / double(1 << 30));
    throw py::value_error(msg);
  }
}

bool check_signals() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mlp's native core: dense layers, losses, optimizers and the training loop";

  py::native_enum<Act>(m, "Activation", "enum.IntEnum")
      .value("IDENTITY", Act::Identity).value("RELU", Act::Relu).value("LEAKY_RELU", Act::LeakyRelu)
      .value("ELU", Act::Elu).value("SIGMOID", Act::Sigmoid).value("TANH", Act::Tanh)
      .value("SWISH", Act::Swish).value("SOFTMAX", Act::Softmax).finalize();
  py::native_enum<LossKind>(m, "Loss", "enum.IntEnum")
      .value("MSE", LossKind::Mse).value("CATEGORICAL_CROSS_ENTROPY", LossKind::CategoricalCrossEntropy)
      .value("BINARY_CROSS_ENTROPY", LossKind::BinaryCrossEntropy).value("POISSON", LossKind::Poisson)
      .finalize();
  py::native_enum<mlp::OptKind>(m, "Optimizer", "enum.IntEnum")
      .value("SGD", mlp::OptKind::Sgd).value("ADAM", mlp::OptKind::Adam).finalize();

  m.def("simd_level", [] { return std::string(mlp::cpu::simd_level()); });
  m.def("set_simd_level", [](const std::string& s) { return mlp::cpu::set_simd_level(s.c_str()); },
        "Forces 'avx512', 'avx2' or 'baseline' kernels; False if this CPU lacks them.");
  m.def("max_threads", &mlp::max_threads);
  m.def("gemm_name", [] { return mlp::cpu::gemm_name(); },
        "The GEMM in use: mlp's packed kernel and its register tile for the chosen instruction set.");
  m.def("compiler", [] {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    return std::string("msvc ") + std::to_string(_MSC_VER);
#else
    return std::string("unknown");
#endif
  });
  m.def("openmp", [] {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
  });
  mlp::bind_cuda(m);

  m.def("gemm", [](const py::array& a, const py::array& b, bool ta, bool tb) {
    return by_dtype(a, "a", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pa = ptr<T>(a, "a", 2);
      const T* pb = ptr<T>(b, "b", 2);
      const idx m_ = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
      const idx kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
      if (k != kb) throw py::value_error("gemm: inner dimensions differ (" + std::to_string(k) + " vs " + std::to_string(kb) + ")");
      auto c = empty<T>(m_, n);
      mlp::cpu::GemmArgs<T> g;
      g.m = m_; g.n = n; g.k = k;
      g.a = pa; g.lda = a.shape(1); g.trans_a = ta;
      g.b = pb; g.ldb = b.shape(1); g.trans_b = tb;
      g.c = c.mutable_data(); g.ldc = n;
      {
        py::gil_scoped_release rel;
        mlp::cpu::kernels<T>().gemm(g);
      }
      return std::move(c);
    });
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false);

  m.def("activation_forward", [](const py::array& z, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* pz = ptr<T>(z, "z", 2);
      auto a = empty<T>(z.shape(0), z.shape(1));
      mlp::cpu::kernels<T>().activation_forward(a.mutable_data(), pz, z.shape(0), z.shape(1), to_act(act), T(alpha));
      return std::move(a);
    });
  }, py::arg("z"), py::arg("act"), py::arg("alpha"));

  m.def("activation_backward", [](const py::array& z, const py::array& a, const py::array& da, int act, double alpha) {
    return by_dtype(z, "z", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const idx r = z.shape(0), c = z.ndim() == 2 ? z.shape(1) : -1;
      const T* pz = ptr<T>(z, "z", 2);
      const T* pa = ptr<T>(a, "a", 2, r, c);
      const T* pg = ptr<T>(da, "da", 2, r, c);
      auto dz = empty<T>(r, c);
      mlp::cpu::kernels<T>().activation_backward(dz.mutable_data(), pz, pa, pg, r, c, to_act(act), T(alpha));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("da"), py::arg("act"), py::arg("alpha"));

  m.def("dense_forward", [](const py::array& x, const py::array& w, const py::array& b, int act, double alpha) {
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
        mlp::cpu::dense_forward<T>(pz, pa, px, pw, pb, n, in, out, ac, T(alpha));
      }
      return py::make_tuple(z, a);
    });
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("act"), py::arg("alpha"));

  m.def("dense_backward", [](const py::array& x, const py::array& w, const py::array& z, const py::array& a,
                             const py::array& g, int act, double alpha, bool g_is_dz, bool need_dx) {
    return by_dtype(x, "x", [&](auto tag) -> py::object {
      using T = decltype(tag);
      const T* px = ptr<T>(x, "x", 2);
      const idx n = x.shape(0), in = x.shape(1);
      const T* pw = ptr<T>(w, "w", 2, in);
      const idx out = w.shape(1);
      const T* pz = ptr<T>(z, "z", 2, n, out);
      const T* pa = ptr<T>(a, "a", 2, n, out);
      const T* pg = ptr<T>(g, "g", 2, n, out);
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
      const Act ac = to_act(act);
      {
        py::gil_scoped_release rel;
        const T* pdz = pg;
        if (!g_is_dz) {
          mlp::cpu::kernels<T>().activation_backward(dz.mutable_data(), pz, pa, pg, n, out, ac, T(alpha));
          pdz = dz.data();
        }
        mlp::cpu::dense_backward<T>(dw.mutable_data(), db.mutable_data(), pdx, pdz, px, pw, n, in, out, T(0));
      }
      return py::make_tuple(dw, db, dx);
    });
  }, py::arg("x"), py::arg("w"), py::arg("z"), py::arg("a"), py::arg("g"), py::arg("act"), py::arg("alpha"),
     py::arg("g_is_dz"), py::arg("need_dx"));

  m.def("loss_forward", [](const py::array& z, const py::array& a, const py::array& y, int loss,
                           const py::object& sw, double scale) {
    return by_dtype(z, "z", [&](auto tag) -> double {
      using T = decltype(tag);
      const LossInputs<T> in(z, a, y, sw);
      return scale * mlp::cpu::kernels<T>().loss_forward(in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss)) / in.wsum;
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
      mlp::cpu::kernels<T>().loss_backward(dz.mutable_data(), in.z, in.a, in.y, in.w, in.n, in.c, to_loss(loss),
                                           to_act(act), T(alpha), T(scale / in.wsum));
      return std::move(dz);
    });
  }, py::arg("z"), py::arg("a"), py::arg("y"), py::arg("loss"), py::arg("act"), py::arg("alpha"),
     py::arg("sample_weight"), py::arg("scale"));

  m.def("sgd_step", [](const py::array& p, const py::array& g, const py::array& v, double lr, double mu, bool nesterov) {
    by_dtype(p, "params", [&](auto tag) {
      using T = decltype(tag);
      T* pp = out_ptr<T>(p, "params", 1);
      const idx n = p.shape(0);
      const T* pg = ptr<T>(g, "grads", 1, n);
      T* pv = out_ptr<T>(v, "velocity", 1, n);
      std::vector<T> d(static_cast<std::size_t>(n));
      const auto& k = mlp::cpu::kernels<T>();
      k.sgd_delta(d.data(), pp, pg, pv, n, T(lr), T(mu), nesterov, T(0));
      k.add_inplace(pp, d.data(), n);
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"));

  m.def("adam_step", [](const py::array& p, const py::array& g, const py::array& mm, const py::array& v, double lr,
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
      std::vector<T> d(static_cast<std::size_t>(n));
      const auto& k = mlp::cpu::kernels<T>();
      k.adam_delta(d.data(), pp, pg, pm, pv, n, T(lr_t), T(b1), T(b2), T(eps), T(0));
      k.add_inplace(pp, d.data(), n);
      return 0;
    });
  }, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("t"));

  py::class_<PyNetwork>(m, "Network")
      .def(py::init([](std::vector<idx> sizes, std::vector<int> acts, std::vector<double> alphas, int loss,
                       double loss_scale, const std::string& dtype) {
             std::vector<Act> a;
             for (int x : acts) a.push_back(to_act(x));
             for (idx s : sizes)  // the constructor checks the range too; this keeps the sums below exact
               if (s < 1 || s > (idx(1) << 31)) throw py::value_error("sizes: layer widths must be in [1, 2^31]");
             check_network_memory(sizes, dtype == "float32" ? 4.0 : 8.0);
             auto net = std::make_unique<PyNetwork>();
             if (dtype == "float32")
               net->f = std::make_unique<mlp::Network<float>>(sizes, a, alphas, to_loss(loss), loss_scale);
             else if (dtype == "float64")
               net->d = std::make_unique<mlp::Network<double>>(sizes, a, alphas, to_loss(loss), loss_scale);
             else
               throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
             return net;
           }),
           py::arg("sizes"), py::arg("activations"), py::arg("alphas"), py::arg("loss"), py::arg("loss_scale"),
           py::arg("dtype"))
      .def_property_readonly("dtype", &PyNetwork::dtype)
      .def_property_readonly("n_layers", [](PyNetwork& s) { return s.visit([](auto& n) { return n.n_layers(); }); })
      .def_property_readonly("n_params", [](PyNetwork& s) { return s.visit([](auto& n) { return n.n_params(); }); })
      .def_property_readonly("sizes", [](PyNetwork& s) { return s.visit([](auto& n) { return n.sizes(); }); })
      .def_property("step", [](PyNetwork& s) { return s.visit([](auto& n) { return n.step(); }); },
                    [](PyNetwork& s, long long v) {
                      if (v < 0) throw py::value_error("step: must be >= 0");
                      s.visit([&](auto& n) { n.set_step(v); return 0; });
                    })
      .def_property_readonly("params", [](py::object self) {
        auto& s = self.cast<PyNetwork&>();
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          return py::array_t<T>({n.n_params()}, {idx(sizeof(T))}, n.params(), self);
        });
      })
      .def("weight", [](py::object self, idx i) {
        auto& s = self.cast<PyNetwork&>();
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          if (i < 0 || i >= n.n_layers()) throw py::index_error("weight: layer index out of range");
          const idx r = n.sizes()[i], c = n.sizes()[i + 1];
          return py::array_t<T>({r, c}, {idx(sizeof(T)) * c, idx(sizeof(T))}, n.params() + n.weight_offset(i), self);
        });
      })
      .def("bias", [](py::object self, idx i) {
        auto& s = self.cast<PyNetwork&>();
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          if (i < 0 || i >= n.n_layers()) throw py::index_error("bias: layer index out of range");
          return py::array_t<T>({n.sizes()[i + 1]}, {idx(sizeof(T))}, n.params() + n.bias_offset(i), self);
        });
      })
      .def("set_optimizer", [](PyNetwork& s, int kind, double momentum, bool nesterov, double b1, double b2, double eps) {
        if (kind != 0 && kind != 1) throw py::value_error("kind: expected Optimizer.SGD or Optimizer.ADAM");
        mlp::OptimizerConfig c;
        c.kind = mlp::OptKind(kind); c.momentum = momentum; c.nesterov = nesterov;
        c.beta1 = b1; c.beta2 = b2; c.eps = eps;
        s.visit([&](auto& n) { n.set_optimizer(c); return 0; });
      }, py::arg("kind"), py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("beta1") = 0.9,
         py::arg("beta2") = 0.999, py::arg("eps") = 1e-8)
      .def("set_l2", [](PyNetwork& s, double alpha, bool per_sample) {
        if (!std::isfinite(alpha) || alpha < 0) throw py::value_error("alpha: L2 strength must be finite and >= 0");
        s.visit([&](auto& n) { n.set_l2(alpha, per_sample); return 0; });
      }, py::arg("alpha"), py::arg("per_sample"))
      .def("reset_optimizer_state", [](PyNetwork& s) { s.visit([](auto& n) { n.reset_optimizer_state(); return 0; }); })
      .def("optimizer_state", [](PyNetwork& s) {
        return s.visit([](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          py::list out;
          for (auto* buf : n.optimizer_buffers()) {
            py::array_t<T> a(idx(buf->size()));
            std::copy(buf->begin(), buf->end(), a.mutable_data());
            out.append(a);
          }
          return out;
        });
      })
      .def("set_optimizer_state", [](PyNetwork& s, py::list state, long long step) {
        s.visit([&](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          auto bufs = n.optimizer_buffers();
          if (py::len(state) != bufs.size())
            throw py::value_error("state: expected " + std::to_string(bufs.size()) + " arrays for this optimizer");
          for (std::size_t i = 0; i < bufs.size(); ++i) {
            py::array a = state[i].cast<py::array>();
            const T* p = ptr<T>(a, "state", 1, n.n_params());
            std::copy(p, p + n.n_params(), bufs[i]->begin());
          }
          n.set_step(step);
          return 0;
        });
      }, py::arg("state"), py::arg("step"))
      .def("set_seed", [](PyNetwork& s, unsigned long long seed) { s.visit([&](auto& n) { n.set_seed(seed); return 0; }); })
      .def("set_threads", [](PyNetwork& s, int t) {
        if (t < 0) throw py::value_error("n_threads: expected 0 (all cores) or a positive number");
        s.visit([&](auto& n) { n.set_threads(t); return 0; });
      })
      .def("train_epoch", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw,
                             idx batch_size, bool shuffle, double lr) {
        if (batch_size < 1) throw py::value_error("batch_size: expected a positive integer");
        if (!std::isfinite(lr) || lr < 0) throw py::value_error("learning_rate: expected a finite number >= 0");
        mlp::EpochResult r = s.visit([&](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.sizes().front());
          const idx rows = x.shape(0);
          if (rows < 1) throw py::value_error("x: expected at least one row");
          const T* py_ = ptr<T>(y, "y", 2, rows, n.sizes().back());
          const T* pw = opt_ptr<T>(sw, "sample_weight", rows);
          if (auto* gpu = s.gpu<T>()) {
            const std::uintptr_t key = s.key_for(x, y, sw);
            py::gil_scoped_release rel;
            return gpu->train_epoch(px, py_, pw, rows, batch_size, shuffle, lr, &check_signals, key);
          }
          py::gil_scoped_release rel;
          return n.train_epoch(px, py_, pw, rows, batch_size, shuffle, lr, &check_signals);
        });
        if (r.interrupted) throw py::error_already_set();
        return r.loss;
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("batch_size"), py::arg("shuffle"), py::arg("lr"))
      .def("predict", [](PyNetwork& s, const py::array& x) {
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.sizes().front());
          const idx rows = x.shape(0);
          auto out = empty<T>(rows, n.sizes().back());
          T* po = out.mutable_data();
          {
            py::gil_scoped_release rel;
            if (auto* gpu = s.gpu<T>()) gpu->predict(po, px, rows);
            else n.predict(po, px, rows);
          }
          return std::move(out);
        });
      }, py::arg("x"))
      .def("loss", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw) {
        return s.visit([&](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.sizes().front());
          const idx rows = x.shape(0);
          const T* py_ = ptr<T>(y, "y", 2, rows, n.sizes().back());
          const T* pw = opt_ptr<T>(sw, "sample_weight", rows);
          py::gil_scoped_release rel;
          if (auto* gpu = s.gpu<T>()) return gpu->loss_and_grad(px, py_, pw, rows, nullptr, 0);
          return n.loss_and_grad(px, py_, pw, rows, nullptr);
        });
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"))
      .def("loss_and_grad", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw) {
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.sizes().front());
          const idx rows = x.shape(0);
          const T* py_ = ptr<T>(y, "y", 2, rows, n.sizes().back());
          const T* pw = opt_ptr<T>(sw, "sample_weight", rows);
          py::array_t<T> grad(n.n_params());
          T* pg = grad.mutable_data();
          double loss;
          // L-BFGS calls this once per iteration with the same data: the device keeps it.
          auto* gpu = s.gpu<T>();
          const std::uintptr_t key = gpu ? s.key_for(x, y, sw) : 0;
          {
            py::gil_scoped_release rel;
            loss = gpu ? gpu->loss_and_grad(px, py_, pw, rows, pg, key) : n.loss_and_grad(px, py_, pw, rows, pg);
          }
          return py::make_tuple(loss, grad);
        });
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"))
      .def_property_readonly("device", [](PyNetwork& s) {
        const int d = s.device();
        return d < 0 ? std::string("cpu") : "cuda:" + std::to_string(d);
      })
      .def("to_device", [](PyNetwork& s, int ordinal) { s.to_device(ordinal); }, py::arg("ordinal"))
      .def("release_data", [](PyNetwork& s) { s.release_data(); });
}
