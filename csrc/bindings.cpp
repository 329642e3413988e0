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

#include "bind_ops.hpp"
#include "cpu/dense.hpp"
#include "cpu/kernels.hpp"
#include "cuda/api.hpp"
#include "activations.hpp"
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
    if (ordinal >= 0 && visit([](auto& n) { return n.ensemble(); }) > 1)
      throw py::value_error("device: ensembles (ensemble > 1) run on the CPU only; the CUDA backend "
                            "has no ensemble kernels yet");
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
void check_network_memory(const std::vector<idx>& sizes, double value_bytes, double table_values) {
  double n = table_values;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) n += double(sizes[i]) * double(sizes[i + 1]) + double(sizes[i + 1]);
  const double limit = physical_memory();
  if (limit > 0 && n * value_bytes > limit) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "sizes: the network's %.4g parameters need %.4g GiB, more than this machine's %.4g GiB",
                  n, n * value_bytes / double(1 << 30), limit / double(1 << 30));
    throw py::value_error(msg);
  }
}

// The CPU kernels behind _core's per-operation entry points (bind_ops.hpp).
template <class T>
struct CpuOps {
  static constexpr bool fused_paths = false;
  static void gemm(T* c, const T* a, const T* b, idx m, idx n, idx k, bool ta, bool tb) {
    mlp::cpu::GemmArgs<T> g;
    g.m = m; g.n = n; g.k = k;
    g.a = a; g.lda = ta ? m : k; g.trans_a = ta;
    g.b = b; g.ldb = tb ? k : n; g.trans_b = tb;
    g.c = c; g.ldc = n;
    mlp::cpu::kernels<T>().gemm(g);
  }
  static void activation_forward(T* a, const T* z, idx rows, idx cols, Act act, T alpha) {
    mlp::cpu::kernels<T>().activation_forward(a, z, rows, cols, act, alpha);
  }
  static void activation_backward(T* dz, const T* z, const T* a, const T* da, idx rows, idx cols, Act act, T alpha) {
    mlp::cpu::kernels<T>().activation_backward(dz, z, a, da, rows, cols, act, alpha);
  }
  static void dense_forward(T* z, T* a, const T* x, const T* w, const T* b, idx n, idx in, idx out, Act act, T alpha) {
    mlp::cpu::dense_forward<T>(z, a, x, w, b, n, in, out, act, alpha);
  }
  static void dense_backward(T* dw, T* db, T* dx, const T* dz, const T* x, const T* w, idx n, idx in, idx out,
                             Act prev_act, T prev_alpha, const T* prev_z, const T* prev_a) {
    mlp::cpu::dense_backward<T>(dw, db, dx, dz, x, w, n, in, out, T(0), nullptr, prev_act, prev_alpha, prev_z, prev_a);
  }
  static double loss_forward(const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind loss) {
    return mlp::cpu::kernels<T>().loss_forward(z, a, y, w, rows, cols, loss);
  }
  static void loss_backward(T* dz, const T* z, const T* a, const T* y, const T* w, idx rows, idx cols, LossKind loss,
                            Act act, T alpha, T coef) {
    mlp::cpu::kernels<T>().loss_backward(dz, z, a, y, w, rows, cols, loss, act, alpha, coef);
  }
  static void sgd_step(T* p, const T* g, T* v, idx n, T lr, T mu, bool nesterov) {
    std::vector<T> d(static_cast<std::size_t>(n));
    const auto& k = mlp::cpu::kernels<T>();
    k.sgd_delta(d.data(), p, g, v, n, lr, mu, nesterov, T(0), T(1), T(0));
    k.add_inplace(p, d.data(), n);
  }
  static void adam_step(T* p, const T* g, T* m, T* v, idx n, T lr_t, double b1, double b2, T eps) {
    std::vector<T> d(static_cast<std::size_t>(n));
    const auto& k = mlp::cpu::kernels<T>();
    k.adam_delta(d.data(), p, g, m, v, n, lr_t, T(b1), T(1.0 - b1), T(b2), T(1.0 - b2), eps, T(0), T(1), T(0));
    k.add_inplace(p, d.data(), n);
  }
};

bool check_signals() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mlp's native core: dense layers, losses, optimizers and the training loop";

  // The codes of activations, losses and optimizers. Named ...Kind so that they do not share a
  // name with the public classes mlp.Activation, mlp.Loss and mlp.Optimizer.
  py::native_enum<Act>(m, "ActivationKind", "enum.IntEnum")
      .value("IDENTITY", Act::Identity).value("RELU", Act::Relu).value("LEAKY_RELU", Act::LeakyRelu)
      .value("ELU", Act::Elu).value("SIGMOID", Act::Sigmoid).value("TANH", Act::Tanh)
      .value("SWISH", Act::Swish).value("SOFTMAX", Act::Softmax).value("SELU", Act::Selu)
      .value("MISH", Act::Mish).value("GELU", Act::Gelu).value("GELU_TANH", Act::GeluTanh).finalize();
  py::native_enum<LossKind>(m, "LossKind", "enum.IntEnum")
      .value("MSE", LossKind::Mse).value("CATEGORICAL_CROSS_ENTROPY", LossKind::CategoricalCrossEntropy)
      .value("BINARY_CROSS_ENTROPY", LossKind::BinaryCrossEntropy).value("POISSON", LossKind::Poisson)
      .finalize();
  py::native_enum<mlp::OptKind>(m, "OptimizerKind", "enum.IntEnum")
      .value("SGD", mlp::OptKind::Sgd).value("ADAM", mlp::OptKind::Adam).finalize();

  m.def("simd_level", [] { return std::string(mlp::cpu::simd_level()); });
  // The exp clamp of activations.hpp, for the Python side's own exp (poisson link, ONNX).
  m.attr("EXP_LIMIT_FLOAT32") = double(mlp::kExpMaxF);
  m.attr("EXP_LIMIT_FLOAT64") = mlp::kExpMax;
  // selu's fixed constants, for the ONNX export's Selu node.
  m.attr("SELU_ALPHA") = mlp::kSeluAlpha;
  m.attr("SELU_SCALE") = mlp::kSeluScale;
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
  mlp::bind_cuda(m);

  bind_ops<CpuOps>(m);

  py::class_<PyNetwork>(m, "Network")
      .def(py::init([](std::vector<idx> sizes, std::vector<int> acts, std::vector<double> alphas, int loss,
                       double loss_scale, const std::string& dtype, std::vector<std::vector<idx>> embeddings,
                       idx n_inputs, idx ensemble) {
             if (ensemble < 1 || ensemble > 1024) throw py::value_error("ensemble: expected 1 to 1024 members");
             std::vector<Act> a;
             for (int x : acts) a.push_back(to_act(x));
             for (idx s : sizes)  // the constructor checks the range too; this keeps the sums below exact
               if (s < 1 || s > (idx(1) << 31)) throw py::value_error("sizes: layer widths must be in [1, 2^31]");
             std::vector<mlp::EmbeddingSpec> emb;
             double table_values = 0.0;
             for (const auto& e : embeddings) {
               if (e.size() != 3 || e[1] < 1 || e[1] > (idx(1) << 24) || e[2] < 1 || e[2] > (idx(1) << 31))
                 throw py::value_error("embeddings: expected (column, rows in [1, 2^24], width in [1, 2^31]) triples");
               emb.push_back({e[0], e[1], e[2]});
               table_values += double(e[1]) * double(e[2]);
             }
             check_network_memory(sizes, dtype == "float32" ? 4.0 : 8.0,
                                  table_values + (ensemble > 1 && !sizes.empty()
                                                      ? double(ensemble) * double(sizes[0]) : 0.0));
             auto net = std::make_unique<PyNetwork>();
             if (dtype == "float32")
               net->f = std::make_unique<mlp::Network<float>>(sizes, a, alphas, to_loss(loss), loss_scale, emb, n_inputs,
                                                              ensemble);
             else if (dtype == "float64")
               net->d = std::make_unique<mlp::Network<double>>(sizes, a, alphas, to_loss(loss), loss_scale, emb,
                                                               n_inputs, ensemble);
             else
               throw py::value_error("dtype: expected 'float32' or 'float64', got '" + dtype + "'");
             return net;
           }),
           py::arg("sizes"), py::arg("activations"), py::arg("alphas"), py::arg("loss"), py::arg("loss_scale"),
           py::arg("dtype"), py::arg("embeddings") = std::vector<std::vector<idx>>(), py::arg("n_inputs") = 0,
           py::arg("ensemble") = 1)
      .def_property_readonly("dtype", &PyNetwork::dtype)
      .def_property_readonly("n_layers", [](PyNetwork& s) { return s.visit([](auto& n) { return n.n_layers(); }); })
      .def_property_readonly("n_params", [](PyNetwork& s) { return s.visit([](auto& n) { return n.n_params(); }); })
      .def_property_readonly("sizes", [](PyNetwork& s) { return s.visit([](auto& n) { return n.sizes(); }); })
      .def_property_readonly("n_inputs", [](PyNetwork& s) { return s.visit([](auto& n) { return n.n_inputs(); }); })
      .def_property_readonly("ensemble", [](PyNetwork& s) { return s.visit([](auto& n) { return n.ensemble(); }); })
      .def("adapters", [](py::object self) {
        auto& s = self.cast<PyNetwork&>();
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          if (n.ensemble() < 2) throw py::value_error("adapters: this network is not an ensemble");
          const idx r = n.ensemble(), c = n.sizes()[0];
          return py::array_t<T>({r, c}, {idx(sizeof(T)) * c, idx(sizeof(T))}, n.params() + n.adapter_offset(), self);
        });
      })
      .def("embedding", [](py::object self, idx e) {
        auto& s = self.cast<PyNetwork&>();
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          if (e < 0 || e >= idx(n.embeddings().size())) throw py::index_error("embedding: index out of range");
          const idx r = n.embeddings()[std::size_t(e)].rows, c = n.embeddings()[std::size_t(e)].width;
          return py::array_t<T>({r, c}, {idx(sizeof(T)) * c, idx(sizeof(T))}, n.params() + n.embedding_offset(e), self);
        });
      })
      .def("set_dropout", [](PyNetwork& s, std::vector<double> rates) {
        for (double r : rates)
          if (!std::isfinite(r) || r < 0 || r >= 1) throw py::value_error("dropout: rates must be in [0, 1)");
        s.visit([&](auto& n) { n.set_dropout(rates); return 0; });
      }, py::arg("rates"))
      .def_property_readonly("dropout", [](PyNetwork& s) { return s.visit([](auto& n) { return n.dropout(); }); })
      .def("set_schedule", [](PyNetwork& s, int slot, int kind, double warmup, double total, double floor, double flat) {
        if (slot < 0 || slot >= mlp::kNumSchedSlots) throw py::value_error("slot: expected 0, 1 or 2");
        mlp::Schedule sc;
        sc.kind = mlp::SchedKind(kind); sc.warmup = warmup; sc.total = total; sc.floor = floor; sc.flat = flat;
        if (!mlp::schedule_valid(sc)) throw py::value_error("schedule: settings out of range");
        s.visit([&](auto& n) { n.set_schedule(mlp::SchedSlot(slot), sc); return 0; });
      }, py::arg("slot"), py::arg("kind"), py::arg("warmup") = 0.0, py::arg("total") = 1.0, py::arg("floor") = 0.0,
         py::arg("flat") = 0.0)
      .def("set_label_smoothing", [](PyNetwork& s, double ls) {
        if (!std::isfinite(ls) || ls < 0 || ls > 1) throw py::value_error("label_smoothing: expected a number in [0, 1]");
        s.visit([&](auto& n) { n.set_label_smoothing(ls); return 0; });
      }, py::arg("label_smoothing"))
      .def_property_readonly("label_smoothing", [](PyNetwork& s) { return s.visit([](auto& n) { return n.label_smoothing(); }); })
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
      .def("set_optimizer", [](PyNetwork& s, int kind, double momentum, bool nesterov, double b1, double b2, double eps,
                               double weight_decay, bool decay_bias, double clipnorm) {
        if (kind != 0 && kind != 1) throw py::value_error("kind: expected OptimizerKind.SGD or OptimizerKind.ADAM");
        if (!std::isfinite(weight_decay) || weight_decay < 0) throw py::value_error("weight_decay: expected a finite number >= 0");
        if (!std::isfinite(clipnorm) || clipnorm < 0) throw py::value_error("clipnorm: expected a finite number >= 0");
        mlp::OptimizerConfig c;
        c.kind = mlp::OptKind(kind); c.momentum = momentum; c.nesterov = nesterov;
        c.beta1 = b1; c.beta2 = b2; c.eps = eps;
        c.weight_decay = weight_decay; c.decay_bias = decay_bias; c.clipnorm = clipnorm;
        s.visit([&](auto& n) { n.set_optimizer(c); return 0; });
      }, py::arg("kind"), py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("beta1") = 0.9,
         py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0, py::arg("decay_bias") = false,
         py::arg("clipnorm") = 0.0)
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
      .def_property_readonly("last_threads", [](PyNetwork& s) { return s.visit([](auto& n) { return n.last_threads(); }); },
                             "Threads that ran the last batches of the last train_epoch on the CPU (0 before the first)")
      .def("train_epoch", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw,
                             idx batch_size, bool shuffle, double lr, const py::object& order) {
        if (batch_size < 1) throw py::value_error("batch_size: expected a positive integer");
        if (!std::isfinite(lr) || lr < 0) throw py::value_error("learning_rate: expected a finite number >= 0");
        const std::int64_t* po = nullptr;
        if (!order.is_none()) {
          const py::array ord = py::reinterpret_borrow<py::array>(order);
          if (!py::isinstance<py::array_t<std::int64_t>>(order) || ord.ndim() != 1 ||
              !(ord.flags() & py::array::c_style) || ord.shape(0) != x.shape(0))
            throw py::value_error("order: expected a C-contiguous int64 array with one entry per row of x");
          if (s.device() >= 0) throw py::value_error("order: the CUDA backend orders the rows itself; pass None");
          po = static_cast<const std::int64_t*>(ord.data());
        }
        mlp::EpochResult r = s.visit([&](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.n_inputs());
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
          return n.train_epoch(px, py_, pw, rows, batch_size, shuffle, lr, &check_signals, po);
        });
        if (r.interrupted) throw py::error_already_set();
        return r.loss;
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("batch_size"), py::arg("shuffle"), py::arg("lr"),
         py::arg("order") = py::none())
      .def("predict", [](PyNetwork& s, const py::array& x, bool finite_only) {
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.n_inputs());
          const idx rows = x.shape(0);
          if (finite_only) {  // the caller's fast path: None sends it to its full check
            const idx count = rows * n.n_inputs();
            bool finite = true;
            for (idx i = 0; i < count; ++i) finite = finite && std::isfinite(px[i]);
            if (!finite) return py::none();
          }
          auto out = empty<T>(rows, n.sizes().back());
          T* po = out.mutable_data();
          {
            py::gil_scoped_release rel;
            if (auto* gpu = s.gpu<T>()) gpu->predict(po, px, rows);
            else n.predict(po, px, rows);
          }
          return std::move(out);
        });
      }, py::arg("x"), py::arg("finite_only") = false)
      .def("loss", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw) {
        return s.visit([&](auto& n) {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.n_inputs());
          const idx rows = x.shape(0);
          const T* py_ = ptr<T>(y, "y", 2, rows, n.sizes().back());
          const T* pw = opt_ptr<T>(sw, "sample_weight", rows);
          py::gil_scoped_release rel;
          if (auto* gpu = s.gpu<T>()) return gpu->loss_and_grad(px, py_, pw, rows, nullptr, 0);
          return n.loss_and_grad(px, py_, pw, rows, nullptr);
        });
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"))
      .def("loss_and_grad", [](PyNetwork& s, const py::array& x, const py::array& y, const py::object& sw,
                               bool training) {
        return s.visit([&](auto& n) -> py::object {
          using T = std::remove_reference_t<decltype(*n.params())>;
          const T* px = ptr<T>(x, "x", 2, -1, n.n_inputs());
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
            loss = gpu ? gpu->loss_and_grad(px, py_, pw, rows, pg, key, training)
                       : n.loss_and_grad(px, py_, pw, rows, pg, training);
          }
          return py::make_tuple(loss, grad);
        });
      }, py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("training") = false)
      .def_property_readonly("device", [](PyNetwork& s) {
        const int d = s.device();
        return d < 0 ? std::string("cpu") : "cuda:" + std::to_string(d);
      })
      .def("to_device", [](PyNetwork& s, int ordinal) { s.to_device(ordinal); }, py::arg("ordinal"))
      .def("release_data", [](PyNetwork& s) { s.release_data(); });
}
