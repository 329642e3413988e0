// GEMMs through cuBLAS (row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so the
// operands swap), the dense forward's bias(+ReLU) fused through a cuBLASLt epilogue, the bias
// gradient fused into the weight-gradient GEMM (cuBLASLt's bias-gradient epilogue) or else as a
// GEMV with a vector of ones. float32 uses TF32 tensor cores only when asked. Every plan made,
// every epilogue run and every fallback is counted (stats()), and a refused plan keeps its reason.
#include <climits>
#include <string>
#include <cstdint>

#include "api.hpp"
#include "kernels.cuh"

namespace mlp::cuda {

namespace {

template <class T>
constexpr cudaDataType_t data_type() {
  return sizeof(T) == 4 ? CUDA_R_32F : CUDA_R_64F;
}
template <class T>
cublasComputeType_t compute_type() {
  if (sizeof(T) == 8) return CUBLAS_COMPUTE_64F;
  return tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

int as_int(idx v, const char* what) {
  if (v < 0 || v > INT_MAX) fail(what, "dimension exceeds the 32-bit range of cuBLAS", __FILE__, __LINE__);
  return int(v);
}

cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

// log2 of the largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by it.
int align_log2(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  int k = 0;
  while (k < 8 && (a & ((std::uintptr_t(1) << (k + 1)) - 1)) == 0) ++k;
  return k;
}

}  // namespace

template <class T>
void gemm(Context& c, T* out, const T* a, const T* b, idx m, idx n, idx k, bool ta, idx lda, bool tb, idx ldb,
          idx ldc, T beta) {
  if (m <= 0 || n <= 0) return;
  const T one = T(1);
  MLP_CUBLAS_CHECK(cublasGemmEx(c.blas, op(tb), op(ta), as_int(n, "gemm n"), as_int(m, "gemm m"),
                                as_int(k, "gemm k"), &one, b, data_type<T>(), as_int(ldb, "gemm ldb"), a,
                                data_type<T>(), as_int(lda, "gemm lda"), &beta, out, data_type<T>(),
                                as_int(ldc, "gemm ldc"), compute_type<T>(), CUBLAS_GEMM_DEFAULT));
  MLP_CUDA_AFTER("cublasGemmEx");
}

namespace {

// One cuBLASLt call of a plan being made: on failure, the plan says which call answered what.
#define MLP_LT_TRY(call)                                                            \
  do {                                                                              \
    const cublasStatus_t mlp_s_ = (call);                                           \
    if (mlp_s_ != CUBLAS_STATUS_SUCCESS) {                                          \
      p.why = std::string(#call).substr(0, std::string(#call).find('(')) + ": " +   \
              cublasGetStatusString(mlp_s_);                                        \
      return;                                                                       \
    }                                                                               \
  } while (0)

// Column-major D (rows x cols; ldd) = op(A) op(B) with epilogue epi, A stored (ar x ac; lda), B
// stored (br x bc; ldb); the bias pointer is set per call. Fills p (p.ok, or p.why).
struct PlanShape {
  cudaDataType_t dt;
  cublasComputeType_t compute;
  cublasOperation_t ta, tb;
  idx ar, ac, lda, br, bc, ldb, rows, cols, ldd;
  cublasLtEpilogue_t epi;
  std::uint32_t al_a, al_b, al_d;
  const void* bias;  // the first call's (the key holds its alignment); each call sets its own
};

void make_plan(Context& c, LtPlan& p, const PlanShape& s) {
  MLP_LT_TRY(cublasLtMatmulDescCreate(&p.desc, s.compute, s.dt));
  MLP_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &s.ta, sizeof(s.ta)));
  MLP_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &s.tb, sizeof(s.tb)));
  MLP_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &s.epi, sizeof(s.epi)));
  MLP_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &s.bias, sizeof(s.bias)));
  MLP_LT_TRY(cublasLtMatrixLayoutCreate(&p.a, s.dt, std::uint64_t(s.ar), std::uint64_t(s.ac), std::int64_t(s.lda)));
  MLP_LT_TRY(cublasLtMatrixLayoutCreate(&p.b, s.dt, std::uint64_t(s.br), std::uint64_t(s.bc), std::int64_t(s.ldb)));
  MLP_LT_TRY(cublasLtMatrixLayoutCreate(&p.c, s.dt, std::uint64_t(s.rows), std::uint64_t(s.cols), std::int64_t(s.ldd)));
  cublasLtMatmulPreference_t pref = nullptr;
  MLP_LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
  struct PrefGuard {
    cublasLtMatmulPreference_t p;
    ~PrefGuard() { cublasLtMatmulPreferenceDestroy(p); }
  } guard{pref};
  const std::uint64_t ws = c.workspace.size();
  MLP_LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  MLP_LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &s.al_a,
                                                  sizeof(s.al_a)));
  MLP_LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &s.al_b,
                                                  sizeof(s.al_b)));
  MLP_LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &s.al_d,
                                                  sizeof(s.al_d)));
  MLP_LT_TRY(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &s.al_d,
                                                  sizeof(s.al_d)));
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  MLP_LT_TRY(cublasLtMatmulAlgoGetHeuristic(c.lt, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found));
  if (found <= 0) {
    p.why = "cublasLtMatmulAlgoGetHeuristic: no algorithm";
    return;
  }
  if (res.state != CUBLAS_STATUS_SUCCESS) {
    p.why = std::string("cublasLtMatmulAlgoGetHeuristic: ") + cublasGetStatusString(res.state);
    return;
  }
  p.algo = res.algo;
  p.ok = true;
}
#undef MLP_LT_TRY

const char* epilogue_name(int e) {
  return e == 0 ? "bias" : e == 1 ? "bias+relu" : "bias gradient";
}

// The plan for key, made (and counted) on first use; a refused one is counted and its reason kept.
template <class T>
LtPlan& plan_for(Context& c, const LtKey& key, const PlanShape& shape, idx m, idx n, idx k) {
  auto it = c.plans.find(key);
  if (it != c.plans.end()) return it->second;
  if (c.plans.size() >= kMaxPlans) c.clear_plans();  // predict on ever new row counts
  LtPlan p;
  make_plan(c, p, shape);
  counters().lt_plans++;
  if (!p.ok) {
    counters().lt_plan_failures++;
    note_fallback(p.why + " (" + (sizeof(T) == 4 ? "float32" : "float64") + ", " +
                  epilogue_name(std::get<10>(key)) + " epilogue, m=" + std::to_string(m) + " n=" +
                  std::to_string(n) + " k=" + std::to_string(k) + ")");
  }
  return c.plans.emplace(key, std::move(p)).first->second;
}

}  // namespace

template <class T>
bool gemm_bias(Context& c, T* out, const T* a, idx lda, const T* w, idx ldw, const T* bias, idx m, idx n, idx k,
               idx ldc, bool relu) {
  if (m <= 0 || n <= 0) return true;
  // Column-major: D (n x m; ldc) = W' (n x k; ldw) A' (k x m; lda) + bias (n), bias per row of D.
  const int align = align_log2(out) | align_log2(a) << 4 | align_log2(w) << 8 | align_log2(bias) << 12;
  const bool tf = sizeof(T) == 4 && tf32();
  const LtKey key{int(sizeof(T)), tf, false, false, m, n, k, lda, ldw, ldc, relu ? 1 : 0, align};
  const PlanShape shape{data_type<T>(), compute_type<T>(), CUBLAS_OP_N, CUBLAS_OP_N, n, k, ldw, k, m, lda, n, m, ldc,
                        relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS,
                        1u << align_log2(w), 1u << align_log2(a), 1u << align_log2(out), bias};
  LtPlan& p = plan_for<T>(c, key, shape, m, n, k);
  if (!p.ok) {
    counters().epilogue_fallbacks++;
    return false;
  }
  const T one = T(1), zero = T(0);
  // A plan that was made runs: a failure now is an error (a bad pointer, a fault), not a reason
  // to fall back quietly.
  MLP_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  MLP_CUBLAS_CHECK(cublasLtMatmul(c.lt, p.desc, &one, w, p.a, a, p.b, &zero, out, p.c, out, p.c, &p.algo,
                                  c.workspace.data(), c.workspace.size(), c.stream));
  MLP_CUDA_AFTER("cublasLtMatmul (bias epilogue)");
  counters().epilogue_runs++;
  return true;
}

template <class T>
bool gemm_wgrad_bgrad(Context& c, T* dw, T* db, const T* x, const T* dz, idx n, idx in, idx out) {
  if (in <= 0 || out <= 0) return true;
  if (n <= 0) return false;  // nothing to reduce: the caller's path zeroes
  // Row-major dw (in, out) is column-major D (out x in; ld out) = dz' (out x n; ld out, as stored)
  // times x (stored column-major (in x n; ld in), transposed). The bias gradient db (out), the rows
  // of D, is the sum of A = dz' over the GEMM's k = n: cuBLASLt's BGRADA epilogue (the same fusion
  // as BGRADB in the transposed, PyTorch-style layout).
  const int align = align_log2(dw) | align_log2(x) << 4 | align_log2(dz) << 8 | align_log2(db) << 12;
  const bool tf = sizeof(T) == 4 && tf32();
  const LtKey key{int(sizeof(T)), tf, false, true, out, in, n, out, in, out, 2, align};
  const PlanShape shape{data_type<T>(), compute_type<T>(), CUBLAS_OP_N, CUBLAS_OP_T, out, n, out, in, n, in, out, in,
                        out, CUBLASLT_EPILOGUE_BGRADA, 1u << align_log2(dz), 1u << align_log2(x),
                        1u << align_log2(dw), db};
  LtPlan& p = plan_for<T>(c, key, shape, out, in, n);
  if (!p.ok) {
    counters().bgrad_fallbacks++;
    return false;
  }
  const T one = T(1), zero = T(0);
  MLP_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &db, sizeof(db)));
  MLP_CUBLAS_CHECK(cublasLtMatmul(c.lt, p.desc, &one, dz, p.a, x, p.b, &zero, dw, p.c, dw, p.c, &p.algo,
                                  c.workspace.data(), c.workspace.size(), c.stream));
  MLP_CUDA_AFTER("cublasLtMatmul (bias-gradient epilogue)");
  counters().bgrad_runs++;
  return true;
}

namespace {
cublasStatus_t gemv(cublasHandle_t h, int m, int n, const float* alpha, const float* a, int lda, const float* x,
                    const float* beta, float* y) {
  return cublasSgemv(h, CUBLAS_OP_N, m, n, alpha, a, lda, x, 1, beta, y, 1);
}
cublasStatus_t gemv(cublasHandle_t h, int m, int n, const double* alpha, const double* a, int lda, const double* x,
                    const double* beta, double* y) {
  return cublasDgemv(h, CUBLAS_OP_N, m, n, alpha, a, lda, x, 1, beta, y, 1);
}
}  // namespace

template <class T>
void col_sum(Context& c, T* db, const T* x, idx rows, idx cols, T beta) {
  if (cols <= 0) return;
  // x row-major (rows, cols) is column-major (cols x rows): db = x' ones.
  const T one = T(1);
  const T* ones = c.ones<T>(rows);
  MLP_CUBLAS_CHECK(gemv(c.blas, as_int(cols, "col_sum cols"), as_int(rows, "col_sum rows"), &one, x,
                        as_int(cols, "col_sum ld"), ones, &beta, db));
  MLP_CUDA_AFTER("cublas gemv (bias gradient)");
}

template void gemm<float>(Context&, float*, const float*, const float*, idx, idx, idx, bool, idx, bool, idx, idx, float);
template void gemm<double>(Context&, double*, const double*, const double*, idx, idx, idx, bool, idx, bool, idx, idx, double);
template bool gemm_bias<float>(Context&, float*, const float*, idx, const float*, idx, const float*, idx, idx, idx, idx, bool);
template bool gemm_bias<double>(Context&, double*, const double*, idx, const double*, idx, const double*, idx, idx, idx, idx, bool);
template bool gemm_wgrad_bgrad<float>(Context&, float*, float*, const float*, const float*, idx, idx, idx);
template bool gemm_wgrad_bgrad<double>(Context&, double*, double*, const double*, const double*, idx, idx, idx);
template void col_sum<float>(Context&, float*, const float*, idx, idx, float);
template void col_sum<double>(Context&, double*, const double*, idx, idx, double);

}  // namespace mlp::cuda
