// Packed GEMM with a fused epilogue: C = beta C + op(A) op(B), then bias+activation (forward)
// or the activation derivative (backward) applied to each register tile while it is in L1.
// Blocking: NC columns of B and KC of k packed once, MC rows of A packed per block, and an
// MR x NR register tile (NR = two vectors) computed by the micro-kernel.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../activations.hpp"
#include "../dropout.hpp"
#include "isa.hpp"
#include "kernels.hpp"

namespace mlp::cpu::MLP_ISA {
namespace {

template <class T>
struct Blocking {
  static constexpr int NV = 2;
  static constexpr int NR = NV * Vec<T>::lanes;
  static constexpr int MR = kMR;
  static constexpr idx KC = 256;
  static constexpr idx MC = MR * 16;
  static constexpr idx NC = 2048;
};

// Packing buffers grow once per thread and are reused by every later call.
template <class T>
T* pack_buffer(std::size_t n) {
  thread_local std::vector<T> buf;
  const std::size_t align = 64 / sizeof(T);
  if (buf.size() < n + align) buf.resize(n + align);
  T* p = buf.data();
  const auto off = (reinterpret_cast<std::uintptr_t>(p) / sizeof(T)) % align;
  return off ? p + (align - off) : p;
}

template <class T>
inline const T* a_row(const GemmArgs<T>& g, idx r) {
  return g.a + (g.a_rows ? g.a_rows[r] : r) * g.lda;
}

// Ap: panels of MR rows of op(A)[i0 : i0+mc, p0 : p0+kc], each panel p-major, zero-padded.
template <class T>
void pack_a(T* __restrict ap, const GemmArgs<T>& g, idx i0, idx mc, idx p0, idx kc) {
  constexpr int MR = Blocking<T>::MR;
  for (idx ir = 0; ir < mc; ir += MR) {
    const idx mr = std::min<idx>(MR, mc - ir);
    T* dst = ap + ir * kc;
    if (!g.trans_a) {
      for (int r = 0; r < MR; ++r) {
        if (r < mr) {
          const T* src = a_row(g, i0 + ir + r) + p0;
          for (idx p = 0; p < kc; ++p) dst[p * MR + r] = src[p];
        } else {
          for (idx p = 0; p < kc; ++p) dst[p * MR + r] = T(0);
        }
      }
    } else {
      for (idx p = 0; p < kc; ++p) {
        const T* src = a_row(g, p0 + p) + i0 + ir;
        int r = 0;
        for (; r < mr; ++r) dst[p * MR + r] = src[r];
        for (; r < MR; ++r) dst[p * MR + r] = T(0);
      }
    }
  }
}

// Bp: panels of NR columns of op(B)[p0 : p0+kc, j0 : j0+nc], each panel p-major, zero-padded.
template <class T>
void pack_b(T* __restrict bp, const GemmArgs<T>& g, idx p0, idx kc, idx j0, idx nc) {
  constexpr int NR = Blocking<T>::NR;
  for (idx jr = 0; jr < nc; jr += NR) {
    const idx nr = std::min<idx>(NR, nc - jr);
    T* dst = bp + jr * kc;
    if (!g.trans_b) {
      for (idx p = 0; p < kc; ++p) {
        const T* src = g.b + (p0 + p) * g.ldb + j0 + jr;
        T* d = dst + p * NR;
        if (nr == NR) {
          std::memcpy(d, src, sizeof(T) * NR);
        } else {
          int c = 0;
          for (; c < nr; ++c) d[c] = src[c];
          for (; c < NR; ++c) d[c] = T(0);
        }
      }
    } else {
      for (int c = 0; c < NR; ++c) {
        if (c < nr) {
          const T* src = g.b + (j0 + jr + c) * g.ldb + p0;
          for (idx p = 0; p < kc; ++p) dst[p * NR + c] = src[p];
        } else {
          for (idx p = 0; p < kc; ++p) dst[p * NR + c] = T(0);
        }
      }
    }
  }
}

// tile (MR x NR) = op(A) panel (MR x kc)  Bp panel (kc x NR).
// Packed: element (i, p) of the A panel is ap[p * MR + i]. Direct: it is arows[i][p * pstride],
// read straight from the caller's matrix; this skips packing A, which for the narrow layers of
// an MLP (n = 64) costs as much as the multiply itself.
// NV: vectors of the panel's NR columns that are computed; fewer than Blocking::NV for the last
// panel when its columns fit in them (an output layer of 10 would otherwise do 32 columns of work,
// a hidden layer of 100 the last 4 columns at the cost of 32). The tile keeps its NR stride.
template <class T, bool Direct, int NV = Blocking<T>::NV>
inline void micro_kernel(idx kc, const T* __restrict ap, const T* const* __restrict arows, idx pstride,
                         const T* __restrict bp, T* __restrict tile) {
  using V = typename Vec<T>::type;
  constexpr int MR = Blocking<T>::MR, NVP = Blocking<T>::NV, L = Vec<T>::lanes;
  V c[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = V{};
  const T* rows[MR];
  if constexpr (Direct) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) rows[i] = arows[i];
  }
  for (idx p = 0; p < kc; ++p) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], bp + p * NVP * L + v * L, sizeof(V));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T a = Direct ? rows[i][p * pstride] : ap[p * MR + i];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] += a * b[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(tile + i * NVP * L + v * L, &c[i][v], sizeof(V));
}

// Writes an mr x nr tile into C at (i0, j0): accumulate, and on the last k block, the epilogue.
template <Act A, class T>
void store_tile(const GemmArgs<T>& g, const T* __restrict tile, idx i0, idx j0, idx mr, idx nr,
                bool first, bool last) {
  constexpr int NR = Blocking<T>::NR;
  const T beta = first ? g.beta : T(1);
  for (idx i = 0; i < mr; ++i) {
    T* __restrict crow = g.c + (i0 + i) * g.ldc + j0;
    const T* __restrict t = tile + i * NR;
    if (!last || g.epi == Epi::None) {
      if (beta == T(0)) {
        for (idx j = 0; j < nr; ++j) crow[j] = t[j];
      } else if (beta == T(1)) {
        for (idx j = 0; j < nr; ++j) crow[j] += t[j];
      } else {
        for (idx j = 0; j < nr; ++j) crow[j] = beta * crow[j] + t[j];
      }
      continue;
    }
    if (g.epi == Epi::BiasAct) {
      const T* __restrict bias = g.bias ? g.bias + j0 : nullptr;
      const T alpha = g.alpha;
      T acc[NR];
      for (idx j = 0; j < nr; ++j) acc[j] = (beta == T(0) ? T(0) : beta * crow[j]) + t[j] + (bias ? bias[j] : T(0));
      T* __restrict arow = g.a_out ? g.a_out + (i0 + i) * g.ld_aout + j0 : crow;
      if (g.a_out)
        for (idx j = 0; j < nr; ++j) crow[j] = acc[j];
      if (g.drop_keys) {  // inverted dropout on the activation, keyed by row and unit
        const std::uint32_t key = g.drop_keys[i0 + i], thr = g.drop_threshold;
        const T s = g.drop_scale;
        for (idx j = 0; j < nr; ++j) {
          const T m = dropout_bits(key, std::uint32_t(j0 + j)) >= thr ? s : T(0);
          arow[j] = act_forward<A>(acc[j], alpha) * m;
        }
      } else {
        for (idx j = 0; j < nr; ++j) arow[j] = act_forward<A>(acc[j], alpha);
      }
    } else {  // Deriv
      const T* __restrict zrow = g.deriv_z + (i0 + i) * g.ld_deriv + j0;
      const T* __restrict arow = g.deriv_a + (i0 + i) * g.ld_deriv + j0;
      const T alpha = g.alpha;
      if (g.drop_keys) {  // a is masked: a / scale is the activation of a kept unit
        const std::uint32_t key = g.drop_keys[i0 + i], thr = g.drop_threshold;
        const T s = g.drop_scale, inv = T(1) / g.drop_scale;
        for (idx j = 0; j < nr; ++j) {
          const T acc = (beta == T(0) ? T(0) : beta * crow[j]) + t[j];
          const bool keep = dropout_bits(key, std::uint32_t(j0 + j)) >= thr;
          crow[j] = keep ? acc * s * act_derivative<A>(zrow[j], arow[j] * inv, alpha) : T(0);
        }
      } else {
        for (idx j = 0; j < nr; ++j) {
          const T acc = (beta == T(0) ? T(0) : beta * crow[j]) + t[j];
          crow[j] = acc * act_derivative<A>(zrow[j], arow[j], alpha);
        }
      }
    }
  }
}

// Dot product of two contiguous vectors, in vector registers (a plain loop would stay scalar:
// reordering a float sum is not allowed without -ffast-math).
template <class T>
inline T dot(const T* __restrict a, const T* __restrict b, idx k) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes;
  V acc0 = V{}, acc1 = V{};
  idx p = 0;
  for (; p + 2 * L <= k; p += 2 * L) {
    V a0, a1, b0, b1;
    std::memcpy(&a0, a + p, sizeof(V));
    std::memcpy(&a1, a + p + L, sizeof(V));
    std::memcpy(&b0, b + p, sizeof(V));
    std::memcpy(&b1, b + p + L, sizeof(V));
    acc0 += a0 * b0;
    acc1 += a1 * b1;
  }
  acc0 += acc1;
  T s = T(0);
  for (int l = 0; l < L; ++l) s += acc0[l];
  for (; p < k; ++p) s += a[p] * b[p];
  return s;
}

// Narrow outputs (n <= NR / 4, e.g. a regressor's single output): the register tile would be
// mostly padding, so compute dot products (A not transposed) or axpy rows (A transposed) instead,
// then reuse store_tile for beta and the epilogue.
template <Act A, class T>
void gemm_narrow(const GemmArgs<T>& g) {
  constexpr int MR = Blocking<T>::MR, NR = Blocking<T>::NR;
  const idx m = g.m, n = g.n, k = g.k;
  T* bt = pack_buffer<T>(std::size_t(n * k + n * m + 64));  // op(B) columns, then (A^T case) C^T
  T* ct = bt + n * k;
  for (idx j = 0; j < n; ++j)
    for (idx p = 0; p < k; ++p) bt[j * k + p] = g.trans_b ? g.b[j * g.ldb + p] : g.b[p * g.ldb + j];
  alignas(64) T tile[MR * NR];
  if (g.trans_a) {
    std::fill(ct, ct + n * m, T(0));
    for (idx p = 0; p < k; ++p) {
      const T* __restrict ar = a_row(g, p);
      for (idx j = 0; j < n; ++j) {
        const T bj = bt[j * k + p];
        T* __restrict cj = ct + j * m;
        for (idx i = 0; i < m; ++i) cj[i] += bj * ar[i];
      }
    }
  }
  for (idx i0 = 0; i0 < m; i0 += MR) {
    const idx mr = std::min<idx>(MR, m - i0);
    for (idx r = 0; r < mr; ++r)
      for (idx j = 0; j < n; ++j)
        tile[r * NR + j] = g.trans_a ? ct[j * m + i0 + r] : dot(a_row(g, i0 + r), bt + j * k, k);
    store_tile<A, T>(g, tile, i0, 0, mr, n, true, true);
  }
}

// Few rows (m <= MR: predict on a handful of rows), neither operand transposed: nothing is
// packed; each NR-column panel of op(B) is read row by row straight from B. The k blocks and
// the order of every multiply-add are the micro-kernel's, so the result is bit-identical to the
// packed path's on the same rows.
template <Act A, class T>
void gemm_small_m(const GemmArgs<T>& g) {
  using B = Blocking<T>;
  constexpr int NR = B::NR;
  const idx m = g.m, n = g.n, k = g.k;
  alignas(64) T tile[B::MR * NR];
  for (idx j0 = 0; j0 < n; j0 += NR) {
    const idx nr = std::min<idx>(NR, n - j0);
    for (idx pc = 0; pc == 0 || pc < k; pc += B::KC) {
      const idx kc = std::min<idx>(B::KC, k - pc);
      const bool first = pc == 0, last = pc + B::KC >= k;
      std::fill(tile, tile + m * NR, T(0));
      for (idx p = pc; p < pc + kc; ++p) {
        const T* __restrict brow = g.b + p * g.ldb + j0;
        for (idx r = 0; r < m; ++r) {
          const T a = a_row(g, r)[p];
          T* __restrict t = tile + r * NR;
          for (idx j = 0; j < nr; ++j) t[j] += a * brow[j];
        }
      }
      store_tile<A, T>(g, tile, 0, j0, m, nr, first, last);
    }
  }
}

// Offset of block (jc, pc) in the layout pack_b_all writes: NC-column blocks in order, each
// holding its KC-row blocks in order, each block kc x round_up(nc, NR).
template <class T>
idx packed_offset(idx k, idx n, idx jc, idx pc) {
  using B = Blocking<T>;
  // Blocks before jc are full width (NC, a multiple of NR): jc / NC blocks of k * NC values.
  const idx ncpad = std::min<idx>(B::NC, (n - jc + B::NR - 1) / B::NR * B::NR);
  return jc * k + pc * ncpad;
}

template <class T>
void gemm_impl(const GemmArgs<T>& g) {
  using B = Blocking<T>;
  constexpr int MR = B::MR, NR = B::NR, L = Vec<T>::lanes;
  constexpr int NV_HALF = B::NV / 2;  // the narrower kernel of a last panel
  static_assert(NV_HALF >= 1, "the register tile holds at least two vectors a row");
  const idx m = g.m, n = g.n, k = g.k;
  if (m <= 0 || n <= 0) return;
  if (n * 4 <= NR) {
    if (g.epi == Epi::None) return gemm_narrow<Act::Identity, T>(g);
    return with_act(g.act, [&](auto tag) { gemm_narrow<decltype(tag)::value, T>(g); });
  }
  if (m <= MR && !g.trans_a && !g.trans_b && !g.packed_b) {
    if (g.epi == Epi::None) return gemm_small_m<Act::Identity, T>(g);
    return with_act(g.act, [&](auto tag) { gemm_small_m<decltype(tag)::value, T>(g); });
  }
  const idx kc_max = std::min<idx>(B::KC, std::max<idx>(k, 1));
  const idx nc_max = std::min<idx>(B::NC, (n + NR - 1) / NR * NR);
  const idx mc_max = std::min<idx>(B::MC, (m + MR - 1) / MR * MR);
  // A is read in place unless it is both transposed and row-gathered (the first layer's dW on a
  // shuffled batch), where its rows are scattered along k.
  const bool direct = !g.trans_a || !g.a_rows;
  T* bp = pack_buffer<T>(std::size_t(kc_max * nc_max + kc_max * mc_max + MR * NR + 64));
  T* ap = bp + kc_max * nc_max;
  ap += (64 / sizeof(T)) - (reinterpret_cast<std::uintptr_t>(ap) / sizeof(T)) % (64 / sizeof(T));
  alignas(64) T tile[MR * NR];
  // Epilogue dispatch happens once per call; the tile loop below is monomorphic.
  auto run = [&](auto act_tag) {
    constexpr Act A = decltype(act_tag)::value;
    for (idx jc = 0; jc < n; jc += B::NC) {
      const idx nc = std::min<idx>(B::NC, n - jc);
      for (idx pc = 0; pc == 0 || pc < k; pc += B::KC) {
        const idx kc = std::min<idx>(B::KC, k - pc);
        const bool first = pc == 0, last = pc + B::KC >= k;
        const T* bpan = bp;
        if (g.packed_b) {  // same block order as pack_b_all: jc blocks outside, kc blocks inside
          bpan = g.packed_b + packed_offset<T>(k, n, jc, pc);
        } else if (kc > 0) {
          pack_b(bp, g, pc, kc, jc, nc);
        }
        for (idx ic = 0; ic < m; ic += B::MC) {
          const idx mc = std::min<idx>(B::MC, m - ic);
          const T* arows[B::MC + MR];
          idx pstride = 1;
          if (kc > 0 && !direct) pack_a(ap, g, ic, mc, pc, kc);
          if (kc > 0 && direct) {
            // Rows past the end repeat the last row: valid memory, and their results are dropped.
            const idx mc_pad = (mc + MR - 1) / MR * MR;
            for (idx r = 0; r < mc_pad; ++r) {
              const idx i = ic + std::min(r, mc - 1);
              arows[r] = g.trans_a ? g.a + pc * g.lda + i : a_row(g, i) + pc;
            }
            pstride = g.trans_a ? g.lda : 1;
          }
          for (idx jr = 0; jr < nc; jr += NR) {
            const idx nr = std::min<idx>(NR, nc - jr);
            for (idx ir = 0; ir < mc; ir += MR) {
              const idx mr = std::min<idx>(MR, mc - ir);
              const bool half = nr <= NV_HALF * L;
              if (kc > 0 && direct) {
                if (half)
                  micro_kernel<T, true, NV_HALF>(kc, nullptr, arows + ir, pstride, bpan + jr * kc, tile);
                else
                  micro_kernel<T, true>(kc, nullptr, arows + ir, pstride, bpan + jr * kc, tile);
              } else if (kc > 0) {
                if (half)
                  micro_kernel<T, false, NV_HALF>(kc, ap + ir * kc, nullptr, 0, bpan + jr * kc, tile);
                else
                  micro_kernel<T, false>(kc, ap + ir * kc, nullptr, 0, bpan + jr * kc, tile);
              } else {
                std::fill(tile, tile + MR * NR, T(0));
              }
              store_tile<A, T>(g, tile, ic + ir, jc + jr, mr, nr, first, last);
            }
          }
        }
      }
    }
  };
  if (g.epi == Epi::None) {
    run(std::integral_constant<Act, Act::Identity>{});
  } else {
    with_act(g.act, run);
  }
}

}  // namespace

template <class T>
void gemm(const GemmArgs<T>& g) {
  gemm_impl<T>(g);
}

// Size and contents of op(B) packed once for many GEMMs with the same B (a layer's weights are
// shared by every shard of a batch). Narrow outputs (n <= NR / 4) never read it.
template <class T>
idx packed_b_size(idx k, idx n) {
  using B = Blocking<T>;
  if (n * 4 <= B::NR || k <= 0) return 0;
  const idx full = n / B::NC, rest = n % B::NC;
  return k * (full * B::NC + (rest + B::NR - 1) / B::NR * B::NR);
}

template <class T>
void pack_b_all(T* dst, const GemmArgs<T>& g) {
  using B = Blocking<T>;
  const idx k = g.k, n = g.n;
  if (packed_b_size<T>(k, n) == 0) return;
  for (idx jc = 0; jc < n; jc += B::NC) {
    const idx nc = std::min<idx>(B::NC, n - jc);
    for (idx pc = 0; pc < k; pc += B::KC) {
      const idx kc = std::min<idx>(B::KC, k - pc);
      pack_b(dst + packed_offset<T>(k, n, jc, pc), g, pc, kc, jc, nc);
    }
  }
}
template idx packed_b_size<float>(idx, idx);
template idx packed_b_size<double>(idx, idx);
template void pack_b_all<float>(float*, const GemmArgs<float>&);
template void pack_b_all<double>(double*, const GemmArgs<double>&);
template <class T>
const char* gemm_description() {
  static const std::string name = "mlp packed " + std::to_string(Blocking<T>::MR) + "x" +
                                  std::to_string(Blocking<T>::NR) + " (" MLP_ISA_NAME ")";
  return name.c_str();
}
template const char* gemm_description<float>();
template const char* gemm_description<double>();

template void gemm<float>(const GemmArgs<float>&);
template void gemm<double>(const GemmArgs<double>&);

}  // namespace mlp::cpu::MLP_ISA
