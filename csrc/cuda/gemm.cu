// GEMMs through cuBLAS (row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so the
// operands swap), the dense forward's bias(+ReLU) fused through a cuBLASLt epilogue, and the bias
// gradient as a GEMV with a vector of ones. float32 uses TF32 tensor cores only when asked.
#include <climits>
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
}

template <class T>
bool gemm_bias(Context& c, T* out, const T* a, idx lda, const T* w, idx ldw, const T* bias, idx m, idx n, idx k,
               idx ldc, bool relu) {
  if (m <= 0 || n <= 0) return true;
  // Column-major: D (n x m; ldc) = W' (n x k; ldw) A' (k x m; lda) + bias (n), bias per row of D.
  const int align = align_log2(out) | align_log2(a) << 4 | align_log2(w) << 8 | align_log2(bias) << 12;
  const bool tf = sizeof(T) == 4 && tf32();
  const LtKey key{int(sizeof(T)), tf, false, false, m, n, k, lda, ldw, ldc, relu ? 1 : 0, align};
  auto it = c.plans.find(key);
  if (it == c.plans.end()) {
    if (c.plans.size() >= kMaxPlans) c.clear_plans();  // predict on ever new row counts
    LtPlan p;
    const cudaDataType_t dt = data_type<T>();
    const cublasLtEpilogue_t epi = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const cublasOperation_t nop = CUBLAS_OP_N;
    bool ok = cublasLtMatmulDescCreate(&p.desc, compute_type<T>(), dt) == CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &nop, sizeof(nop)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &nop, sizeof(nop)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&p.a, dt, std::uint64_t(n), std::uint64_t(k), std::int64_t(ldw)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&p.b, dt, std::uint64_t(k), std::uint64_t(m), std::int64_t(lda)) ==
                  CUBLAS_STATUS_SUCCESS &&
              cublasLtMatrixLayoutCreate(&p.c, dt, std::uint64_t(n), std::uint64_t(m), std::int64_t(ldc)) ==
                  CUBLAS_STATUS_SUCCESS;
    if (ok) {
      cublasLtMatmulPreference_t pref = nullptr;
      ok = cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS;
      if (ok) {
        const std::uint64_t ws = c.workspace.size();
        const std::uint32_t al_a = 1u << align_log2(w), al_b = 1u << align_log2(a), al_c = 1u << align_log2(out);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a));
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b));
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c));
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c, sizeof(al_c));
        cublasLtMatmulHeuristicResult_t res{};
        int found = 0;
        ok = cublasLtMatmulAlgoGetHeuristic(c.lt, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found) ==
                 CUBLAS_STATUS_SUCCESS &&
             found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
        if (ok) p.algo = res.algo;
        cublasLtMatmulPreferenceDestroy(pref);
      }
    }
    p.ok = ok;
    it = c.plans.emplace(key, p).first;
  }
  LtPlan& p = it->second;
  if (!p.ok) return false;
  const T one = T(1), zero = T(0);
  if (cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmul(c.lt, p.desc, &one, w, p.a, a, p.b, &zero, out, p.c, out, p.c, &p.algo, c.workspace.data(),
                     c.workspace.size(), c.stream) != CUBLAS_STATUS_SUCCESS) {
    p.ok = false;  // never again for this shape; the caller computes it the other way
    return false;
  }
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
}

template void gemm<float>(Context&, float*, const float*, const float*, idx, idx, idx, bool, idx, bool, idx, idx, float);
template void gemm<double>(Context&, double*, const double*, const double*, idx, idx, idx, bool, idx, bool, idx, idx, double);
template bool gemm_bias<float>(Context&, float*, const float*, idx, const float*, idx, const float*, idx, idx, idx, idx, bool);
template bool gemm_bias<double>(Context&, double*, const double*, idx, const double*, idx, const double*, idx, idx, idx, idx, bool);
template void col_sum<float>(Context&, float*, const float*, idx, idx, float);
template void col_sum<double>(Context&, double*, const double*, idx, idx, double);

}  // namespace mlp::cuda
