// Batch gather: out[i, :] = x[rows[i], :], one warp per row, so that a shuffled batch is one
// contiguous matrix for the layer-0 GEMMs (the CPU packs it inside its GEMM instead).
// Embeddings: the first layer's input looked up from the tables (embed_rows, a gather too), and
// the tables' gradient scatter-added (embed_backward). The scatter is deterministic without
// atomics: each (table, batch row) pair t = e * count + i gets the key (table row << bits) | t,
// and the keys, all distinct, are sorted by a bitonic network (a distinct set has one sorted
// order, so any run gives the same); then each table row's batch rows sit together, in batch
// order, and one warp per table row sums their dL/dx0 in that order into the row's gradient. So
// a batch gives the same bits on every run, summed in the CPU's order (batch row by batch row).
// (CUB's radix sort would do, but CCCL refuses to compile against the pip wheels' newer CUDA
// runtime headers that this build may take cuBLAS from.)
#include <climits>
#include <stdexcept>
#include <string>

#include "kernels.cuh"

namespace mlp::cuda {

namespace {
template <class T>
__global__ void gather_kernel(T* out, const T* x, const idx* rows, idx count, idx cols) {
  const int lane = threadIdx.x & 31;
  for (idx r = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); r < count; r += idx(gridDim.x) * kWarps) {
    const T* src = x + rows[r] * cols;
    T* dst = out + r * cols;
    for (idx j = lane; j < cols; j += 32) dst[j] = src[j];
  }
}

// x0[i, k] = column src[k] of data row s, or, when base[k] >= 0, the table element that column's
// code selects.
template <class T>
__global__ void embed_kernel(T* x0, const T* x, const idx* rows, idx row0, idx count, const T* params,
                             EmbedLayout lay) {
  const idx n = count * lay.in0;
  for (idx t = blockIdx.x * idx(blockDim.x) + threadIdx.x; t < n; t += idx(gridDim.x) * blockDim.x) {
    const idx i = t / lay.in0, k = t - i * lay.in0;
    const idx s = rows ? rows[i] : row0 + i;
    const T v = x[s * lay.n_inputs + lay.src[k]];
    const idx b = lay.base[k];
    x0[t] = b < 0 ? v : params[b + idx(v) * lay.width[k]];
  }
}

// The sort: keys padded to a power of two N >= kSortTile with ULLONG_MAX. Tiles of kSortTile
// keys run the network's stages k <= kSortTile in shared memory; each later stage k runs its
// steps j >= kSortTile over global memory, one launch each, and the rest in shared memory again.
constexpr int kSortTile = 2048;
constexpr int kSortThreads = kSortTile / 2;  // one compare-exchange per thread and step

// One compare-exchange step (k, j) of the network over the tile s (kSortTile keys starting at
// global position base): pair p compares i and i + j, ascending where bit k of i is clear.
__device__ inline void tile_step(unsigned long long* s, idx base, idx k, int j) {
  for (int p = threadIdx.x; p < kSortTile / 2; p += blockDim.x) {
    const int i = 2 * j * (p / j) + (p % j);
    const bool asc = ((base + i) & k) == 0;
    const unsigned long long a = s[i], b = s[i + j];
    if ((a > b) == asc) {
      s[i] = b;
      s[i + j] = a;
    }
  }
  __syncthreads();
}

// first: the stages k = 2 .. kSortTile; else the steps j < kSortTile of stage k.
__global__ void sort_tiles_kernel(unsigned long long* keys, idx k, bool first) {
  __shared__ unsigned long long s[kSortTile];
  const idx base = idx(blockIdx.x) * kSortTile;
  for (int q = threadIdx.x; q < kSortTile; q += blockDim.x) s[q] = keys[base + q];
  __syncthreads();
  if (first) {
    for (int kk = 2; kk <= kSortTile; kk <<= 1)
      for (int j = kk >> 1; j > 0; j >>= 1) tile_step(s, base, kk, j);
  } else {
    for (int j = kSortTile / 2; j > 0; j >>= 1) tile_step(s, base, k, j);
  }
  for (int q = threadIdx.x; q < kSortTile; q += blockDim.x) keys[base + q] = s[q];
}

// Step (k, j >= kSortTile) of the network over all N keys.
__global__ void sort_step_kernel(unsigned long long* keys, idx half, idx k, idx j) {
  for (idx p = blockIdx.x * idx(blockDim.x) + threadIdx.x; p < half; p += idx(gridDim.x) * blockDim.x) {
    const idx i = 2 * j * (p / j) + (p % j);
    const bool asc = (i & k) == 0;
    const unsigned long long a = keys[i], b = keys[i + j];
    if ((a > b) == asc) {
      keys[i] = b;
      keys[i + j] = a;
    }
  }
}

// For pair t = e * count + i (table e, batch row i) of n: the key (the table row its code selects,
// in the numbering of all tables' rows) << tbits | t; ULLONG_MAX for the padding t in [n, N).
template <class T>
__global__ void embed_keys_kernel(unsigned long long* keys, idx N, const T* x, const idx* rows, idx row0, idx count,
                                  EmbedTables tb, int tbits) {
  const idx n = count * tb.n_tables;
  for (idx t = blockIdx.x * idx(blockDim.x) + threadIdx.x; t < N; t += idx(gridDim.x) * blockDim.x) {
    if (t >= n) {
      keys[t] = ULLONG_MAX;
      continue;
    }
    const idx e = t / count, i = t - e * count;
    const idx s = rows ? rows[i] : row0 + i;
    const idx code = idx(x[s * tb.n_inputs + tb.column[e]]);
    keys[t] = ((unsigned long long)(tb.first_row[e] + code) << tbits) | (unsigned long long)t;
  }
}

// One warp per run of equal table rows in the n sorted keys (the warp at the run's first
// position): grad[table row, j] += the sum over the run, in order, of dx0[batch row, pos + j].
template <class T>
__global__ void embed_scatter_kernel(T* grad, const T* dx0, const unsigned long long* keys, idx n, idx count,
                                     EmbedTables tb, int tbits) {
  const int lane = threadIdx.x & 31;
  const unsigned long long mask = (1ull << tbits) - 1;
  for (idx p = blockIdx.x * idx(kWarps) + (threadIdx.x >> 5); p < n; p += idx(gridDim.x) * kWarps) {
    const unsigned long long row = keys[p] >> tbits;
    if (p > 0 && (keys[p - 1] >> tbits) == row) continue;
    const idx e = idx(keys[p] & mask) / count;
    const idx wd = tb.width[e], pos = tb.pos[e];
    T* g = grad + tb.offset[e] + (idx(row) - tb.first_row[e]) * wd;
    for (idx j = lane; j < wd; j += 32) {
      T sum = T(0);
      for (idx q = p; q < n && (keys[q] >> tbits) == row; ++q)
        sum += dx0[(idx(keys[q] & mask) - e * count) * tb.in0 + pos + j];
      g[j] += sum;
    }
  }
}

// Bits of t (pairs n) and the padded key count.
int pair_bits(idx n) {
  int b = 1;
  while (b < 62 && (idx(1) << b) < n) ++b;
  return b;
}
idx padded_keys(idx n) {
  idx N = kSortTile;
  while (N < n) N *= 2;
  return N;
}
}  // namespace

template <class T>
void gather_rows(Context& c, T* out, const T* x, const idx* rows, idx count, idx cols) {
  if (count <= 0 || cols <= 0) return;
  gather_kernel<T><<<blocks_for(count, kWarps), kThreads, 0, c.stream>>>(out, x, rows, count, cols);
  MLP_CUDA_LAUNCHED();
}

template <class T>
void embed_rows(Context& c, T* x0, const T* x, const idx* rows, idx row0, idx count, const T* params,
                const EmbedLayout& lay) {
  if (count <= 0 || lay.in0 <= 0) return;
  embed_kernel<T><<<blocks_for(count * lay.in0), kThreads, 0, c.stream>>>(x0, x, rows, row0, count, params, lay);
  MLP_CUDA_LAUNCHED();
}

void embed_check(const EmbedTables& tb, idx count) {
  const idx n = count * tb.n_tables;
  if (n > 0 && tb.key_bits + pair_bits(n) > 63)
    throw std::invalid_argument(
        "mlp cuda: embeddings: a batch of " + std::to_string(count) + " rows over " + std::to_string(tb.n_tables) +
        " tables is too large for the CUDA backend's deterministic scatter (its sort keys need the bits of the "
        "tables' rows in all plus those of rows x tables, 63 at most); use a smaller batch_size or the CPU");
}

void embed_reserve(Context& c, EmbedScratch& s, const EmbedTables& tb, idx count) {
  const idx n = count * tb.n_tables;
  if (n <= 0) return;
  const idx N = padded_keys(n);
  if (s.keys.size() >= std::size_t(N)) return;
  c.sync();  // the buffer may be in use by work still queued
  s.keys.reserve(std::size_t(N));
}

template <class T>
void embed_backward(Context& c, T* grad, const T* dx0, const T* x, const idx* rows, idx row0, idx count,
                    const EmbedTables& tb, EmbedScratch& s) {
  const idx n = count * tb.n_tables;
  if (n <= 0) return;
  embed_check(tb, count);
  const int tbits = pair_bits(n);
  const idx N = padded_keys(n);
  embed_reserve(c, s, tb, count);
  unsigned long long* keys = s.keys.data();
  embed_keys_kernel<T><<<blocks_for(N), kThreads, 0, c.stream>>>(keys, N, x, rows, row0, count, tb, tbits);
  MLP_CUDA_LAUNCHED();
  const unsigned tiles = unsigned(N / kSortTile);
  sort_tiles_kernel<<<tiles, kSortThreads, 0, c.stream>>>(keys, 0, true);
  MLP_CUDA_LAUNCHED();
  for (idx k = 2 * idx(kSortTile); k <= N; k *= 2) {
    for (idx j = k / 2; j >= kSortTile; j /= 2) {
      sort_step_kernel<<<blocks_for(N / 2), kThreads, 0, c.stream>>>(keys, N / 2, k, j);
      MLP_CUDA_LAUNCHED();
    }
    sort_tiles_kernel<<<tiles, kSortThreads, 0, c.stream>>>(keys, k, false);
    MLP_CUDA_LAUNCHED();
  }
  embed_scatter_kernel<T><<<blocks_for(n, kWarps), kThreads, 0, c.stream>>>(grad, dx0, keys, n, count, tb, tbits);
  MLP_CUDA_LAUNCHED();
}

template void gather_rows<float>(Context&, float*, const float*, const idx*, idx, idx);
template void gather_rows<double>(Context&, double*, const double*, const idx*, idx, idx);
template void embed_rows<float>(Context&, float*, const float*, const idx*, idx, idx, const float*, const EmbedLayout&);
template void embed_rows<double>(Context&, double*, const double*, const idx*, idx, idx, const double*,
                                 const EmbedLayout&);
template void embed_backward<float>(Context&, float*, const float*, const float*, const idx*, idx, idx,
                                    const EmbedTables&, EmbedScratch&);
template void embed_backward<double>(Context&, double*, const double*, const double*, const idx*, idx, idx,
                                     const EmbedTables&, EmbedScratch&);

}  // namespace mlp::cuda
