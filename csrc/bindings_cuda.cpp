// The CUDA part of _core: cuda_available / cuda_device_count / cuda_device_status /
// cuda_device_name, the TF32, epilogue, debug-sync and test allocation-limit switches, the
// counters (cuda_stats), and the submodule _core.cuda_ops with the CUDA operations under the names and
// arguments of the CPU ones (for the tests that compare them). Arguments are checked as for the
// CPU ones (bind_ops.hpp); in a CPU-only build the operations raise ValueError (csrc/cuda/stub.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bind_ops.hpp"
#include "cuda/api.hpp"
#include "py_arrays.hpp"

namespace py = pybind11;
using mlp::idx;
using namespace mlp::pyarg;
namespace ops = mlp::cuda::ops;

namespace {

// The CUDA operations behind _core.cuda_ops (bind_ops.hpp).
template <class T>
struct CudaOps {
  static constexpr bool fused_paths = true;
  static constexpr auto gemm = ops::gemm<T>;
  static constexpr auto activation_forward = ops::activation_forward<T>;
  static constexpr auto activation_backward = ops::activation_backward<T>;
  static constexpr auto dense_forward = ops::dense_forward<T>;
  static constexpr auto dense_backward = ops::dense_backward<T>;
  static constexpr auto loss_forward = ops::loss_forward<T>;
  static constexpr auto loss_backward = ops::loss_backward<T>;
  static constexpr auto sgd_step = ops::sgd_step<T>;
  static constexpr auto adam_step = ops::adam_step<T>;
};

}  // namespace

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
        "cuBLASLt epilogues (default on): bias(+ReLU) in the forward, the bias gradient in the dW GEMM; "
        "off: GEMM + fused bias+activation kernel, and a GEMV for the bias gradient.");
  m.def("cuda_lt_epilogues", &mlp::cuda::lt_epilogues);
  m.def("cuda_device_status", [] {
    const mlp::cuda::DeviceStatus s = mlp::cuda::device_status();
    py::dict d;
    d["built"] = s.built;
    d["count"] = s.count;
    d["error"] = s.error;
    d["error_name"] = s.error_name;
    d["error_string"] = s.error_string;
    d["driver_version"] = s.driver_version;
    d["runtime_version"] = s.runtime_version;
    return d;
  }, "What the CUDA runtime answered when asked for the devices, its error kept: a dict of built, count, "
     "error (a cudaError_t, 0 for none), error_name, error_string, driver_version and runtime_version "
     "(1000 * major + 10 * minor; the driver's is 0 when no driver is installed). Never raises.");
  m.def("cuda_stats", [] {
    const mlp::cuda::Stats s = mlp::cuda::stats();
    py::dict d;
    d["lt_plans"] = s.lt_plans;
    d["lt_plan_failures"] = s.lt_plan_failures;
    d["epilogue_runs"] = s.epilogue_runs;
    d["epilogue_fallbacks"] = s.epilogue_fallbacks;
    d["bgrad_runs"] = s.bgrad_runs;
    d["bgrad_fallbacks"] = s.bgrad_fallbacks;
    d["launches"] = s.launches;
    d["resident_hits"] = s.resident_hits;
    d["uploads"] = s.uploads;
    d["chunked_batches"] = s.chunked_batches;
    d["early_stops"] = s.early_stops;
    d["device_bytes"] = s.device_bytes;
    d["last_fallback"] = s.last_fallback;
    return d;
  }, "Counters of the CUDA backend since cuda_reset_stats() (all zero in a CPU-only build): cuBLASLt plans "
     "made and refused, fused epilogue runs and fallbacks (forward bias/ReLU, backward bias gradient), "
     "launches enqueued, uploads skipped because the device copy was current, chunked batches, early "
     "stops after a divergence, the device bytes mlp holds, and why the last refused plan was refused.");
  m.def("cuda_reset_stats", &mlp::cuda::reset_stats);
  m.def("cuda_set_sync", &mlp::cuda::set_sync_launches, py::arg("enabled"),
        "Debug mode: synchronize and check after every launch, so that a kernel fault names its launch "
        "(also MLP_CUDA_SYNC=1 in the environment).");
  m.def("cuda_sync", &mlp::cuda::sync_launches);
  m.def("cuda_set_alloc_limit", &mlp::cuda::set_alloc_limit, py::arg("bytes"),
        "For tests: device allocations beyond `bytes` held by mlp fail as out of memory (0: no limit).");
  m.def("cuda_mem_info", [](int ordinal) {
    const auto fm = mlp::cuda::mem_info(ordinal);
    return py::make_tuple(fm.first, fm.second);
  }, py::arg("ordinal") = 0, "(free, total) bytes of a device (cudaMemGetInfo).");
  m.def("cuda_current_device", &mlp::cuda::current_device, "The calling thread's current CUDA device.");

  py::module_ o = m.def_submodule("cuda_ops", "CUDA operations on host arrays, as the CPU functions of _core");

  bind_ops<CudaOps>(o);

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
