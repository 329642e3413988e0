// The training loop on the GPU for one mlp::Network<T>: the data is uploaded once and stays; each
// epoch uploads the weights and optimizer state, runs every batch on one stream (gather, forward,
// fused loss, backward, one-launch optimizer step) with no host round trip, and copies back only
// the epoch's loss, then the weights. The batch order is the CPU's (epoch_order, the same seed),
// made on a host thread while the previous epoch runs and uploaded as one index array.
// The training features follow the CPU's (csrc/network.cpp) with the shared headers: dropout masks
// of ../dropout.hpp keyed by data row, the schedules of ../schedule.hpp evaluated on the host per
// batch (the host loop knows each batch's step), label smoothing in the loss's target read, the
// decoupled weight decay and global-norm clipping in the optimizer pass, and embedding tables
// (looked up into the first layer's input; their gradient scatter-added deterministically, see
// gather.cu).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../activations.hpp"
#include "api.hpp"
#include "dense.cuh"

namespace mlp::cuda {

namespace {

// Bookkeeping of an epoch, kept on the device so that no batch waits for the host.
struct EpochState {
  double epoch_sum;     // sum over applied batches of (loss + penalty) * weight sum
  double weight_total;  // sum of their weight sums
  long long batches;    // batches applied
  int diverged;         // sticky: a batch loss was not finite, or a step would overflow a weight
  int bad;              // the current batch's step would overflow a weight
  double wsum;          // the current batch's weight sum, and what follows from it
  double coef;          // loss_scale / wsum
  double l2_eff;        // l2 / wsum (per_sample) or l2
  double data;          // the current batch's loss (scaled), or loss_and_grad's unscaled sum
  double pen;           // sum of squared weights (before the step)
  double gscale;        // the current batch's clipping factor (clipnorm > 0)
  double raw;           // the current batch's unscaled loss sum over its chunks before the last
};

// Sum over the block (blockDim.x == kThreads) of each thread's v, added in thread order so that
// the result is the same on every run; valid in thread 0.
__device__ double block_total(double v) {
  __shared__ double part[kThreads];
  part[threadIdx.x] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int t = 0; t < kThreads; ++t) total += part[t];
  return total;
}

// Sum of partials[0, n) by one block, as block_total; valid in thread 0.
__device__ double sum_partials_in_block(const double* partials, int n) {
  double v = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += partials[i];
  return block_total(v);
}

// wsum of rows [0, count) (sample s = rows ? rows[r] : r), and coef, l2_eff from it.
template <class T>
__global__ void batch_begin_kernel(EpochState* st, const T* sw, const idx* rows, idx count, double loss_scale,
                                   double l2, bool per_sample) {
  double v = 0.0;
  if (sw)
    for (idx r = threadIdx.x; r < count; r += blockDim.x) v += double(sw[rows ? rows[r] : r]);
  const double total = block_total(v);
  if (threadIdx.x == 0) {
    const double wsum = sw ? total : double(count);
    st->wsum = wsum;
    st->coef = loss_scale / wsum;
    st->l2_eff = l2 / (per_sample ? wsum : 1.0);
  }
}

// data = (raw when with_raw, the earlier chunks' sum) + sum(partials), times loss_scale / wsum; a
// non-finite loss stops the epoch before its step.
__global__ void loss_end_kernel(EpochState* st, const double* partials, int n, double loss_scale, bool with_raw) {
  const double total = sum_partials_in_block(partials, n);
  if (threadIdx.x == 0) {
    const double data = (with_raw ? st->raw + total : total) * loss_scale / st->wsum;
    st->data = data;
    if (!isfinite(data) || !(st->wsum > 0)) st->diverged = 1;
  }
}

// After the step: count the batch, or mark the epoch diverged if its step was refused. A
// divergence is also written to flag, page-locked host memory that the host loop polls, so that
// it stops queueing batches that would all be skipped.
__global__ void batch_end_kernel(EpochState* st, const double* pen_partials, int n, volatile int* flag) {
  const double pen = sum_partials_in_block(pen_partials, n);
  if (threadIdx.x == 0) {
    if (!st->diverged) {
      if (st->bad) {
        st->diverged = 1;
      } else {
        st->epoch_sum += (st->data + 0.5 * st->l2_eff * pen) * st->wsum;
        st->weight_total += st->wsum;
        st->batches += 1;
      }
    }
    if (flag && st->diverged) *flag = 1;
  }
}

// loss_and_grad's result: data (the unscaled loss sum) * loss_scale / wsum + penalty.
__global__ void total_loss_kernel(EpochState* st, const double* pen_partials, int n, double loss_scale) {
  const double pen = sum_partials_in_block(pen_partials, n);
  if (threadIdx.x == 0) {
    st->pen = pen;
    st->data = st->data * loss_scale / st->wsum + 0.5 * st->l2_eff * pen;
  }
}

constexpr idx kAlign = 64;  // elements: every device segment starts 256-byte aligned (float)
inline idx round_up(idx v) { return (v + kAlign - 1) / kAlign * kAlign; }
// The host loop looks at the divergence flag every this many batches.
constexpr idx kPollEvery = 4;

}  // namespace

template <class T>
struct DeviceNetwork<T>::Impl {
  Network<T>& host;
  // First of the members with a destructor, so destroyed last: keeps ctx.device current while
  // the buffers below are freed (~Impl enters it), then restores the caller's device.
  DeviceScope exit_scope;
  Context ctx;
  std::mutex mu;
  idx L = 0;
  std::vector<idx> sizes;
  idx n_in = 0;  // columns of x: sizes[0], or with embeddings the host's n_inputs
  // Device layout: every layer's weights first, then the embedding tables, then every bias, each
  // segment aligned, so that "is a weight" (L2 and weight decay apply; the CPU's is_weight counts
  // the tables) is simply i < n_weights. Padding stays zero in every buffer.
  std::vector<idx> dev_w, dev_b, dev_e;
  idx n_weights = 0, P = 0;
  // Embeddings: where each first-layer input column comes from, and the tables for the scatter.
  bool embedded = false;
  Buffer<idx> emb_meta;
  EmbedLayout emb_layout;
  EmbedTables emb_tables;
  EmbedScratch emb_scratch;
  // This step's dropout mask per layer (drop_on[l]: layer l drops).
  std::vector<DropSpec<T>> drop;
  std::vector<char> drop_on;
  Buffer<T> params, grad, opt_m, opt_v;
  // Residency (see api.hpp): page-locked host-layout snapshots of what params and opt_m / opt_v
  // hold, which are also the staging buffers of their copies; *_current: the device copy equals
  // the snapshot. An upload is skipped when the host array still equals its snapshot.
  HostBuffer<T> snap_params, snap_opt[2];
  bool params_current = false;
  bool opt_current[2] = {false, false};
  // The divergence flag that batch_end_kernel writes (mapped page-locked memory), and its device
  // address.
  HostBuffer<int> stop_flag;
  int* stop_flag_dev = nullptr;
  // Training data, kept between calls with the same key; data passed with key 0 (a validation
  // set, say) goes to a second slot, so that it never evicts the training data.
  struct Data {
    Buffer<T> x, y, sw;
  };
  struct DataPtrs {
    const T *x, *y, *sw;
  };
  Data train_data, other_data;
  Buffer<idx> perm;
  idx data_n = 0;
  std::uintptr_t data_key = 0;
  const T *data_x = nullptr, *data_y = nullptr, *data_sw = nullptr;
  // Epoch order: this epoch's, and the next one made ahead while the GPU runs.
  HostBuffer<idx> order, next_order;
  bool next_valid = false;
  idx next_n = 0;
  std::uint64_t next_rng_before = 0, next_rng_after = 0;
  // Scratch for cap rows.
  idx cap = 0;
  Buffer<T> xb, d0, d1;
  Buffer<T> xraw, dx0;  // embeddings: predict's uploaded x chunk, and dL/dx0 of the first layer
  std::vector<Buffer<T>> z, a;
  Buffer<double> loss_part, pen_part, norm_part;
  Buffer<EpochState> state;
  HostBuffer<EpochState> state_host;

  Impl(Network<T>& h, int ordinal) : host(h), ctx(ordinal) {
    try {
      init();
    } catch (...) {
      // The members built so far are destroyed after this block: on this device, after its work.
      exit_scope.enter(ctx.device);
      if (ctx.stream) cudaStreamSynchronize(ctx.stream);
      cudaGetLastError();
      throw;
    }
  }

  ~Impl() {
    // Queued work may still use the buffers: wait for it, on this network's device, before the
    // members are freed (exit_scope keeps the device current until the last of them is).
    exit_scope.enter(ctx.device);
    if (ctx.stream) cudaStreamSynchronize(ctx.stream);
    cudaGetLastError();
  }

  void init() {
    DeviceGuard g(ctx.device);
    sizes = host.sizes();
    L = idx(sizes.size()) - 1;
    n_in = host.n_inputs();
    const auto& emb = host.embeddings();
    embedded = !emb.empty();
    idx off = 0;
    for (idx l = 0; l < L; ++l) {
      dev_w.push_back(off);
      off = round_up(off + sizes[l] * sizes[l + 1]);
    }
    for (const EmbeddingSpec& e : emb) {
      dev_e.push_back(off);
      off = round_up(off + e.rows * e.width);
    }
    n_weights = off;
    for (idx l = 0; l < L; ++l) {
      dev_b.push_back(off);
      off = round_up(off + sizes[l + 1]);
    }
    P = off;
    params.resize(std::size_t(P), "the weights");
    grad.resize(std::size_t(P), "the gradient");
    params.zero(ctx.stream);
    grad.zero(ctx.stream);
    loss_part.resize(kMaxBlocks);
    pen_part.resize(kMaxBlocks);
    norm_part.resize(kMaxBlocks);
    state.resize(1);
    state_host.reserve(1);
    stop_flag.reserve(1, "the divergence flag");
    *stop_flag.data() = 0;
    MLP_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&stop_flag_dev), stop_flag.data(), 0));
    z.resize(std::size_t(L));
    a.resize(std::size_t(L));
    drop.assign(std::size_t(L), DropSpec<T>());
    drop_on.assign(std::size_t(L), 0);
    std::vector<idx> meta;
    if (embedded) meta = embedding_meta();
    if (!meta.empty()) {
      emb_meta.resize(meta.size());
      MLP_CUDA_CHECK(cudaMemcpyAsync(emb_meta.data(), meta.data(), sizeof(idx) * meta.size(), cudaMemcpyHostToDevice,
                                     ctx.stream));
      const idx in0 = sizes[0], E = idx(emb.size());
      const idx* m = emb_meta.data();
      emb_layout.in0 = in0;
      emb_layout.n_inputs = n_in;
      emb_layout.src = m;
      emb_layout.base = m + in0;
      emb_layout.width = m + 2 * in0;
      emb_tables.n_tables = int(E);
      emb_tables.in0 = in0;
      emb_tables.n_inputs = n_in;
      emb_tables.column = m + 3 * in0;
      emb_tables.width = m + 3 * in0 + E;
      emb_tables.pos = m + 3 * in0 + 2 * E;
      emb_tables.offset = m + 3 * in0 + 3 * E;
      emb_tables.first_row = m + 3 * in0 + 4 * E;
      idx total_rows = 0;
      for (const EmbeddingSpec& e : emb) total_rows += e.rows;
      int bits = 1;
      while (bits < 63 && (idx(1) << bits) < total_rows) ++bits;
      emb_tables.key_bits = bits;
    }
    ctx.sync();  // meta is pageable host memory
  }

  // The embedding metadata, as one array: per first-layer input column k (in0 of each) the x
  // column, the device offset of the table element (or -1: a numeric column), the table width;
  // then per table its x column, width, position in x0, device offset and first row (the
  // numbering of all tables' rows that the scatter sorts by). The CPU's order: each table's
  // width in turn, then the other columns in their order.
  std::vector<idx> embedding_meta() const {
    const auto& emb = host.embeddings();
    const idx in0 = sizes[0], E = idx(emb.size());
    std::vector<idx> src, base, width, col, wid, pos, offs, first;
    std::vector<char> is_emb(std::size_t(n_in), 0);
    idx p = 0, row = 0;
    for (idx e = 0; e < E; ++e) {
      const EmbeddingSpec& sp = emb[std::size_t(e)];
      is_emb[std::size_t(sp.column)] = 1;
      for (idx j = 0; j < sp.width; ++j) {
        src.push_back(sp.column);
        base.push_back(dev_e[std::size_t(e)] + j);
        width.push_back(sp.width);
      }
      col.push_back(sp.column);
      wid.push_back(sp.width);
      pos.push_back(p);
      offs.push_back(dev_e[std::size_t(e)]);
      first.push_back(row);
      p += sp.width;
      row += sp.rows;
    }
    for (idx c = 0; c < n_in; ++c)
      if (!is_emb[std::size_t(c)]) {
        src.push_back(c);
        base.push_back(-1);
        width.push_back(0);
      }
    MLP_CHECK(idx(src.size()) == in0, "sizes[0] must equal the embedding widths plus the other columns");
    std::vector<idx> out;
    for (const auto* v : {&src, &base, &width, &col, &wid, &pos, &offs, &first}) out.insert(out.end(), v->begin(), v->end());
    return out;
  }

  // Every embedded column of x (n rows, host memory) holds an integer code in range, as the CPU
  // checks: the device reads table rows by these codes without further checks.
  void check_codes(const T* x, idx n) const {
    for (const EmbeddingSpec& e : host.embeddings())
      for (idx i = 0; i < n; ++i) {
        const T v = x[i * n_in + e.column];
        MLP_CHECK(v >= T(0) && v < T(e.rows) && v == std::floor(v),
                  "embedded column " + std::to_string(e.column) + " holds a value that is not a code in [0, " +
                      std::to_string(e.rows) + ")");
      }
  }

  // Layer l's dropout rate at step `step`: the base rate times the Dropout schedule's factor,
  // never above the base (as Network::dropout_rate).
  double dropout_rate(idx l, std::int64_t step) const {
    const double r = host.dropout()[std::size_t(l)];
    if (r == 0.0) return 0.0;
    const double v = r * schedule_factor(host.schedule(SchedSlot::Dropout), step);
    return v < 0.0 ? 0.0 : (v < r ? v : r);
  }
  // Sets drop / drop_on for the rows of a batch (data row rows ? rows[i] : row0 + i) at `step`;
  // training false: no dropout. Returns whether some layer drops.
  bool set_dropout(bool training, std::int64_t step, const idx* rows, idx row0) {
    bool any = false;
    const auto& rates = host.dropout();
    MLP_CHECK(idx(rates.size()) == L, "one dropout rate per layer expected");
    for (idx l = 0; l < L; ++l) {
      const double rate = training && l + 1 < L ? dropout_rate(l, step) : 0.0;
      drop_on[std::size_t(l)] = rate > 0.0;
      if (rate <= 0.0) continue;
      MLP_CHECK(host.acts()[std::size_t(l)] != Act::Softmax, "dropout cannot follow a softmax");
      DropSpec<T>& d = drop[std::size_t(l)];
      d.seed = host.dropout_seed();
      d.step = step;
      d.layer = l;
      d.rows = rows;
      d.row0 = row0;
      d.threshold = dropout_threshold(rate);
      d.scale = T(1.0 / (1.0 - rate));
      any = true;
    }
    return any;
  }
  // Moves this step's masks to the rows of another chunk (loss_and_grad).
  void move_dropout(const idx* rows, idx row0) {
    for (DropSpec<T>& d : drop) {
      d.rows = rows;
      d.row0 = row0;
    }
  }
  // Targets y (1 - ls) + ls / K, K = outputs (2 for binary cross-entropy): the loss's (ls, ls_add).
  std::pair<T, T> smoothing() const {
    const double ls = host.label_smoothing();
    if (ls == 0.0) return {T(0), T(0)};
    const double k = host.loss() == LossKind::BinaryCrossEntropy ? 2.0 : double(sizes[L]);
    return {T(ls), T(ls / k)};
  }
  // The first layer's input for rows of x (device, n_in wide): x itself, a gather of its rows,
  // or the embedded input in xb.
  const T* first_input(const T* x, const idx* rows, idx row0, idx count) {
    if (embedded) {
      embed_rows<T>(ctx, xb.data(), x, rows, row0, count, params.data(), emb_layout);
      return xb.data();
    }
    if (rows) {
      gather_rows<T>(ctx, xb.data(), x, rows, count, n_in);
      return xb.data();
    }
    return x + row0 * n_in;
  }
  // Zeroes the tables' gradient (scatter-added, unlike the layers' that the GEMMs overwrite).
  void zero_table_grad() {
    if (!embedded) return;
    MLP_CUDA_CHECK(cudaMemsetAsync(grad.data() + dev_e[0], 0, sizeof(T) * (n_weights - dev_e[0]), ctx.stream));
  }

  // Host flat layout (W0 b0 W1 b1 ...) <-> device layout, for params and the optimizer buffers.
  void upload(T* dst, const T* src) {
    for (idx l = 0; l < L; ++l) {
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + dev_w[l], src + host.weight_offset(l),
                                     sizeof(T) * sizes[l] * sizes[l + 1], cudaMemcpyHostToDevice, ctx.stream));
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + dev_b[l], src + host.bias_offset(l), sizeof(T) * sizes[l + 1],
                                     cudaMemcpyHostToDevice, ctx.stream));
    }
    const auto& emb = host.embeddings();
    for (std::size_t e = 0; e < emb.size(); ++e)
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + dev_e[e], src + host.embedding_offset(idx(e)),
                                     sizeof(T) * emb[e].rows * emb[e].width, cudaMemcpyHostToDevice, ctx.stream));
  }
  void download(T* dst, const T* src) {
    for (idx l = 0; l < L; ++l) {
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + host.weight_offset(l), src + dev_w[l],
                                     sizeof(T) * sizes[l] * sizes[l + 1], cudaMemcpyDeviceToHost, ctx.stream));
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + host.bias_offset(l), src + dev_b[l], sizeof(T) * sizes[l + 1],
                                     cudaMemcpyDeviceToHost, ctx.stream));
    }
    const auto& emb = host.embeddings();
    for (std::size_t e = 0; e < emb.size(); ++e)
      MLP_CUDA_CHECK(cudaMemcpyAsync(dst + host.embedding_offset(idx(e)), src + dev_e[e],
                                     sizeof(T) * emb[e].rows * emb[e].width, cudaMemcpyDeviceToHost, ctx.stream));
  }

  // Makes the device array dev (device layout) equal to the host array src (host layout, n_params),
  // unless it already is: current and src unchanged since its snapshot was taken.
  void upload_if_changed(T* dev, const T* src, HostBuffer<T>& snap, bool& current) {
    const std::size_t np = std::size_t(host.n_params()), bytes = sizeof(T) * np;
    if (current && std::memcmp(snap.data(), src, bytes) == 0) {
      counters().resident_hits++;
      return;
    }
    current = false;
    snap.reserve(np, "the host snapshot of the weights");
    // No copy from snap is in flight: every call synchronizes before it returns.
    std::memcpy(snap.data(), src, bytes);
    upload(dev, snap.data());
    current = true;
    counters().uploads++;
  }
  // Enqueues the copy of dev into snap (host layout); finish_to_host() completes it.
  void start_to_host(const T* dev, HostBuffer<T>& snap, bool& current) {
    current = false;
    snap.reserve(std::size_t(host.n_params()), "the host snapshot of the weights");
    download(snap.data(), dev);
  }
  void finish_to_host(T* dst, const HostBuffer<T>& snap, bool& current) {
    std::memcpy(dst, snap.data(), sizeof(T) * std::size_t(host.n_params()));
    current = true;
  }
  // Every device copy of the host's arrays is suspect (after an error).
  void mark_stale() {
    params_current = false;
    opt_current[0] = opt_current[1] = false;
  }

  void upload_params() { upload_if_changed(params.data(), host.params(), snap_params, params_current); }
  // The weights and the optimizer buffers of the host network: [velocity] or [m, v] or none.
  void upload_state() {
    upload_params();
    auto bufs = host.optimizer_buffers();
    Buffer<T>* dev[2] = {&opt_m, &opt_v};
    for (std::size_t i = 0; i < bufs.size() && i < 2; ++i) {
      MLP_CHECK(idx(bufs[i]->size()) == host.n_params(), "optimizer state of the wrong size");
      if (dev[i]->size() != std::size_t(P)) {
        opt_current[i] = false;
        dev[i]->resize(std::size_t(P), "the optimizer state");
        dev[i]->zero(ctx.stream);
      }
      upload_if_changed(dev[i]->data(), bufs[i]->data(), snap_opt[i], opt_current[i]);
    }
  }
  // Writes the weights and the optimizer state back to the host network; synchronizes.
  void download_state() {
    auto bufs = host.optimizer_buffers();
    Buffer<T>* dev[2] = {&opt_m, &opt_v};
    const std::size_t nb = std::min<std::size_t>(bufs.size(), 2);
    start_to_host(params.data(), snap_params, params_current);
    for (std::size_t i = 0; i < nb; ++i) start_to_host(dev[i]->data(), snap_opt[i], opt_current[i]);
    ctx.sync();
    finish_to_host(host.params(), snap_params, params_current);
    for (std::size_t i = 0; i < nb; ++i) finish_to_host(bufs[i]->data(), snap_opt[i], opt_current[i]);
  }

  // After a call threw: wait for the work it queued (its buffers may be freed or reused next),
  // and trust no device copy of the host's arrays.
  void recover() noexcept {
    if (ctx.stream) cudaStreamSynchronize(ctx.stream);
    cudaGetLastError();
    mark_stale();
    next_valid = false;
  }

  DataPtrs bind_data(const T* hx, const T* hy, const T* hsw, idx n, std::uintptr_t key) {
    Data& d = key ? train_data : other_data;
    const DataPtrs ptrs{d.x.data(), d.y.data(), hsw ? d.sw.data() : nullptr};
    if (key && key == data_key && n == data_n && hx == data_x && hy == data_y && hsw == data_sw) return ptrs;
    check_codes(hx, n);  // what stays on the device was checked when it was uploaded
    if (key) {  // the slot is rewritten: its old key names nothing until the upload is done
      data_key = 0;
      data_n = 0;
      data_x = data_y = data_sw = nullptr;
    }
    const idx in = n_in, out = sizes[L];
    d.x.reserve(std::size_t(n * in), "the training data x");
    d.y.reserve(std::size_t(n * out), "the training data y");
    MLP_CUDA_CHECK(cudaMemcpyAsync(d.x.data(), hx, sizeof(T) * n * in, cudaMemcpyHostToDevice, ctx.stream));
    MLP_CUDA_CHECK(cudaMemcpyAsync(d.y.data(), hy, sizeof(T) * n * out, cudaMemcpyHostToDevice, ctx.stream));
    if (hsw) {
      d.sw.reserve(std::size_t(n), "the sample weights");
      MLP_CUDA_CHECK(cudaMemcpyAsync(d.sw.data(), hsw, sizeof(T) * n, cudaMemcpyHostToDevice, ctx.stream));
    }
    if (key) {
      data_key = key;
      data_n = n;
      data_x = hx;
      data_y = hy;
      data_sw = hsw;
    }
    return DataPtrs{d.x.data(), d.y.data(), hsw ? d.sw.data() : nullptr};
  }

  void release() {
    for (Data* d : {&train_data, &other_data}) {
      d->x.release();
      d->y.release();
      d->sw.release();
    }
    perm.release();
    order.release();
    next_order.release();
    next_valid = false;
    data_key = 0;
    data_n = 0;
    data_x = data_y = data_sw = nullptr;
  }

  void ensure_work(idx rows) {
    if (rows <= cap) return;
    cap = 0;  // until every buffer below has room: an allocation may throw (out of memory)
    const idx in = sizes[0];
    idx maxw = 1;
    for (idx l = 1; l <= L; ++l) maxw = std::max(maxw, sizes[l]);
    xb.resize(std::size_t(rows * std::max(in, n_in)), "the batch input");
    if (embedded) {
      xraw.resize(std::size_t(rows * n_in), "the raw batch input");
      dx0.resize(std::size_t(rows * in), "the first layer's input gradient");
      embed_reserve(ctx, emb_scratch, emb_tables, rows);
    }
    d0.resize(std::size_t(rows * maxw), "the backward scratch");
    d1.resize(std::size_t(rows * maxw), "the backward scratch");
    const auto& acts = host.acts();
    for (idx l = 0; l < L; ++l) {
      const std::size_t sz = std::size_t(rows * sizes[l + 1]);
      a[l].resize(sz, "a layer's activations");
      if (act_needs_z(acts[l]) || l == L - 1) z[l].resize(sz, "a layer's pre-activations");
    }
    cap = rows;
  }

  // Rows a chunk of predict / loss_and_grad holds: as many as keep the scratch near 64 Mi values.
  idx chunk_rows(idx n) const {
    idx width = std::max(sizes[0], n_in);
    for (idx l = 1; l <= L; ++l) width += 3 * sizes[l];
    if (embedded) width += n_in + sizes[0] + 4 * idx(host.embeddings().size());
    return std::min(n, std::clamp<idx>((idx(64) << 20) / width, 256, 65536));
  }

  // Forward through every layer for rows of xin; the output layer writes z only (logits) when
  // logits_only, else its activation into a[L-1]. The hidden layers with drop_on set are masked
  // (a = act(z) * mask, z unmasked), as the CPU's write-out.
  void forward(const T* xin, idx rows, bool logits_only, bool dropout) {
    const auto& acts = host.acts();
    const auto& alphas = host.alphas();
    for (idx l = 0; l < L; ++l) {
      const T* in = l == 0 ? xin : a[l - 1].data();
      const bool last = l == L - 1;
      T* zl = (last && logits_only) || (!last && act_needs_z(acts[l])) ? z[l].data() : nullptr;
      T* al = last && logits_only ? nullptr : a[l].data();
      dense_forward<T>(ctx, zl, al, in, params.data() + dev_w[l], params.data() + dev_b[l], rows, sizes[l],
                       sizes[l + 1], acts[l], alphas[l]);
      if (dropout && !last && drop_on[std::size_t(l)])
        dropout_forward<T>(ctx, a[l].data(), rows, sizes[l + 1], drop[std::size_t(l)]);
    }
  }

  // Backward from dz = d0 (the output layer's dL/dz) into grad; beta 1 accumulates (the tables'
  // gradient is always added to: zero_table_grad first). x: the data the batch's first-layer input
  // came from (rows, row0 as for first_input), for the embedded columns' codes.
  void backward(const T* xin, idx rows, T beta, bool dropout, const T* x, const idx* data_rows, idx row0) {
    const auto& acts = host.acts();
    const auto& alphas = host.alphas();
    T* dcur = d0.data();
    T* dnext = d1.data();
    for (idx l = L - 1; l >= 0; --l) {
      const T* in = l == 0 ? xin : a[l - 1].data();
      T* dx = l > 0 ? dnext : (embedded ? dx0.data() : nullptr);
      const Act pa = l > 0 ? acts[l - 1] : Act::Identity;
      const T palpha = l > 0 ? alphas[l - 1] : T(0);
      const T* pz = l > 0 && act_needs_z(acts[l - 1]) ? z[l - 1].data() : nullptr;
      const T* pab = l > 0 ? a[l - 1].data() : nullptr;
      const DropSpec<T>* pdrop = dropout && l > 0 && drop_on[std::size_t(l - 1)] ? &drop[std::size_t(l - 1)] : nullptr;
      dense_backward<T>(ctx, grad.data() + dev_w[l], grad.data() + dev_b[l], dx, dcur, in,
                        params.data() + dev_w[l], rows, sizes[l], sizes[l + 1], beta, pa, palpha, pz, pab, pdrop);
      std::swap(dcur, dnext);
    }
    if (embedded) embed_backward<T>(ctx, grad.data(), dx0.data(), x, data_rows, row0, rows, emb_tables, emb_scratch);
  }

  // Puts this epoch's row order into order (pinned) and advances the host generator exactly as
  // the CPU's train_epoch does; uses the order made ahead when it was made from the same state.
  void make_order(idx n) {
    std::uint64_t& rng = host.rng_state();
    if (next_valid && next_n == n && next_rng_before == rng) {
      order.swap(next_order);
      rng = next_rng_after;
    } else {
      order.reserve(std::size_t(n));
      epoch_order(order.data(), n, true, rng);
    }
    next_valid = false;
  }
  // The next epoch's order, made on a second host thread while this one enqueues the epoch
  // (next_order must have room for n already: pinned memory is allocated on the calling thread).
  void make_next_order(idx n) {
    std::uint64_t rng = host.rng_state();
    next_rng_before = rng;
    epoch_order(next_order.data(), n, true, rng);
    next_rng_after = rng;
    next_n = n;
    next_valid = true;
  }

  EpochResult train_epoch(const T* hx, const T* hy, const T* hsw, idx n, idx batch_size, bool shuffle, double lr,
                          const std::function<bool()>& interrupted, std::uintptr_t key) {
    MLP_CHECK(n > 0, "train_epoch needs at least one row");
    MLP_CHECK(batch_size > 0, "batch_size must be > 0");
    MLP_CHECK(std::isfinite(lr) && lr >= 0, "learning rate must be finite and >= 0");
    std::lock_guard<std::mutex> lock(mu);
    DeviceGuard g(ctx.device);
    try {
      return run_epoch(hx, hy, hsw, n, batch_size, shuffle, lr, interrupted, key);
    } catch (...) {
      recover();
      throw;
    }
  }

  EpochResult run_epoch(const T* hx, const T* hy, const T* hsw, idx n, idx batch_size, bool shuffle, double lr,
                        const std::function<bool()>& interrupted, std::uintptr_t key) {
    const idx batch = std::min(batch_size, n);
    // Rows per chunk: a batch larger than the scratch holds is run in chunks whose gradients
    // accumulate into one step (as loss_and_grad does, and as the CPU shards a batch).
    const idx chunk = chunk_rows(batch);
    const idx out = sizes[L];
    if (embedded) embed_check(emb_tables, chunk);
    const DataPtrs dev = bind_data(hx, hy, hsw, n, key);
    ensure_work(chunk);
    upload_state();
    std::future<void> ahead;
    if (shuffle) {
      perm.reserve(std::size_t(n), "the epoch's row order");
      make_order(n);
      MLP_CUDA_CHECK(cudaMemcpyAsync(perm.data(), order.data(), sizeof(idx) * n, cudaMemcpyHostToDevice, ctx.stream));
      next_order.reserve(std::size_t(n), "the next epoch's row order");
      ahead = std::async(std::launch::async, [this, n] { make_next_order(n); });
    }
    MLP_CUDA_CHECK(cudaMemsetAsync(state.data(), 0, sizeof(EpochState), ctx.stream));
    volatile int* stop_host = stop_flag.data();
    *stop_host = 0;  // no kernel writes it now: the previous call synchronized
    EpochState* st = state.data();
    const OptimizerConfig& opt = host.optimizer();
    const auto& acts = host.acts();
    const auto& alphas = host.alphas();
    const LossKind loss_kind = host.loss();
    const double loss_scale = host.loss_scale();
    const std::int64_t step0 = host.step();
    const idx nb = (n + batch - 1) / batch;
    const unsigned n_step_blocks = step_blocks<T>(P);
    const auto [ls, ls_add] = smoothing();
    const Schedule lr_sched = host.schedule(SchedSlot::LearningRate);
    const Schedule wd_sched = host.schedule(SchedSlot::WeightDecay);
    const bool clip = opt.clipnorm > 0;

    StepArgs<T> sa;
    sa.g = grad.data();
    sa.p = params.data();
    sa.m = opt_m.size() ? opt_m.data() : nullptr;
    sa.v = opt_v.size() ? opt_v.data() : nullptr;
    sa.n = P;
    sa.n_weights = n_weights;
    sa.kind = opt.kind;
    sa.mu = T(opt.momentum);
    sa.nesterov = opt.nesterov;
    sa.b1 = T(opt.beta1);
    sa.c1 = T(1.0 - opt.beta1);
    sa.b2 = T(opt.beta2);
    sa.c2 = T(1.0 - opt.beta2);
    sa.eps = T(opt.eps);
    sa.decay_bias = opt.decay_bias;
    sa.gscale_dev = clip ? &st->gscale : nullptr;
    sa.l2_dev = &st->l2_eff;
    sa.pen_partials = pen_part.data();
    sa.bad = &st->bad;
    sa.skip = &st->diverged;
    if (opt.kind == OptKind::Sgd && opt.momentum > 0) MLP_CHECK(sa.m, "momentum state missing on the device");
    if (opt.kind == OptKind::Adam) MLP_CHECK(sa.m && sa.v, "Adam state missing on the device");

    EpochResult res;
    bool stop = false;
    InterruptPoll poll_interrupt(interrupted);
    for (idx b = 0; b < nb && !stop; ++b) {
      // The GPU found the epoch diverged: every later batch would be skipped, queue none.
      if (b % kPollEvery == 0 && b > 0 && *stop_host) {
        counters().early_stops++;
        break;
      }
      const idx s = b * batch, rb = std::min(n, s + batch) - s;
      // The step this batch takes, if every batch before it was applied (after a refused one
      // nothing more is, so the later steps do not matter).
      const std::int64_t step = step0 + b;
      const idx* rows = shuffle ? perm.data() + s : nullptr;
      const T* yb = shuffle ? dev.y : dev.y + s * out;
      const T* swb = dev.sw ? (shuffle ? dev.sw : dev.sw + s) : nullptr;
      batch_begin_kernel<T><<<1, kThreads, 0, ctx.stream>>>(st, swb, rows, rb, loss_scale, host.l2(),
                                                            host.l2_per_sample());
      MLP_CUDA_LAUNCHED();
      const bool dropout = set_dropout(true, step, rows, s);
      zero_table_grad();
      if (rb > chunk) counters().chunked_batches++;
      for (idx c0 = 0; c0 < rb; c0 += chunk) {
        const idx cnt = std::min(chunk, rb - c0);
        const bool last = c0 + cnt == rb;
        // The chunk's rows: data rows crows[i] (shuffled) or s + c0 + i; masks follow the data rows.
        const idx* crows = rows ? rows + c0 : nullptr;
        if (dropout) move_dropout(crows, s + c0);
        const T* xin = first_input(dev.x, crows, s + c0, cnt);
        forward(xin, cnt, true, dropout);
        const T* yc = rows ? yb : yb + c0 * out;
        const T* swc = swb ? (rows ? swb : swb + c0) : nullptr;
        loss<T>(ctx, loss_part.data(), d0.data(), z[L - 1].data(), nullptr, yc, swc, crows, cnt, out, loss_kind,
                acts[L - 1], alphas[L - 1], T(0), &st->coef, ls, ls_add);
        if (last) {
          loss_end_kernel<<<1, kThreads, 0, ctx.stream>>>(st, loss_part.data(), int(loss_blocks(cnt)), loss_scale,
                                                          c0 > 0);
          MLP_CUDA_LAUNCHED();
        } else {
          sum_partials(ctx, &st->raw, loss_part.data(), int(loss_blocks(cnt)), /*accumulate=*/c0 > 0);
        }
        backward(xin, cnt, c0 == 0 ? T(0) : T(1), dropout, dev.x, crows, s + c0);
      }
      if (clip) clip_scale<T>(ctx, &st->gscale, norm_part.data(), grad.data(), P, opt.clipnorm);
      // Once per batch, as the CPU: the scheduled rate, Adam's bias-corrected one, the decay.
      const double lr_b = lr * schedule_factor(lr_sched, step);
      if (opt.kind == OptKind::Adam) {
        const double t = double(step + 1);
        sa.lr = T(lr_b * std::sqrt(1.0 - std::pow(opt.beta2, t)) / (1.0 - std::pow(opt.beta1, t)));
      } else {
        sa.lr = T(lr_b);
      }
      sa.decay = T(lr_b * opt.weight_decay * schedule_factor(wd_sched, step));
      optimizer_delta<T>(ctx, sa);
      add_inplace<T>(ctx, params.data(), grad.data(), P, &st->diverged, &st->bad);
      batch_end_kernel<<<1, kThreads, 0, ctx.stream>>>(st, pen_part.data(), int(n_step_blocks), stop_flag_dev);
      MLP_CUDA_LAUNCHED();
      if (poll_interrupt()) {
        stop = true;
        res.interrupted = true;
      }
    }
    if (ahead.valid()) ahead.get();
    MLP_CUDA_CHECK(cudaMemcpyAsync(state_host.data(), st, sizeof(EpochState), cudaMemcpyDeviceToHost, ctx.stream));
    download_state();  // synchronizes
    const EpochState& hs = *state_host.data();
    res.diverged = hs.diverged != 0;
    res.batches = idx(hs.batches);
    host.set_step(step0 + hs.batches);
    res.loss = res.diverged || hs.weight_total <= 0 ? std::numeric_limits<double>::quiet_NaN()
                                                    : hs.epoch_sum / hs.weight_total;
    return res;
  }

  void predict(T* hout, const T* hx, idx n) {
    if (n <= 0) return;
    std::lock_guard<std::mutex> lock(mu);
    DeviceGuard g(ctx.device);
    try {
      run_predict(hout, hx, n);
    } catch (...) {
      recover();
      throw;
    }
  }

  void run_predict(T* hout, const T* hx, idx n) {
    check_codes(hx, n);
    const idx out = sizes[L];
    const idx chunk = chunk_rows(n);
    ensure_work(chunk);
    upload_params();
    for (idx r0 = 0; r0 < n; r0 += chunk) {
      const idx cnt = std::min(chunk, n - r0);
      T* staged = embedded ? xraw.data() : xb.data();
      MLP_CUDA_CHECK(cudaMemcpyAsync(staged, hx + r0 * n_in, sizeof(T) * cnt * n_in, cudaMemcpyHostToDevice,
                                     ctx.stream));
      forward(first_input(staged, nullptr, 0, cnt), cnt, false, false);
      MLP_CUDA_CHECK(cudaMemcpyAsync(hout + r0 * out, a[L - 1].data(), sizeof(T) * cnt * out,
                                     cudaMemcpyDeviceToHost, ctx.stream));
    }
    ctx.sync();
  }

  double loss_and_grad(const T* hx, const T* hy, const T* hsw, idx n, T* hgrad, std::uintptr_t key, bool training) {
    MLP_CHECK(n > 0, "loss needs at least one row");
    std::lock_guard<std::mutex> lock(mu);
    DeviceGuard g(ctx.device);
    try {
      return run_loss_and_grad(hx, hy, hsw, n, hgrad, key, training);
    } catch (...) {
      recover();
      throw;
    }
  }

  double run_loss_and_grad(const T* hx, const T* hy, const T* hsw, idx n, T* hgrad, std::uintptr_t key,
                           bool training) {
    const idx out = sizes[L];
    const idx chunk = chunk_rows(n);
    if (embedded && hgrad) embed_check(emb_tables, chunk);
    const DataPtrs dev = bind_data(hx, hy, hsw, n, key);
    ensure_work(chunk);
    upload_params();
    MLP_CUDA_CHECK(cudaMemsetAsync(state.data(), 0, sizeof(EpochState), ctx.stream));
    EpochState* st = state.data();
    const auto& acts = host.acts();
    const auto& alphas = host.alphas();
    const double loss_scale = host.loss_scale();
    const auto [ls, ls_add] = smoothing();
    const T* swd = dev.sw;
    batch_begin_kernel<T><<<1, kThreads, 0, ctx.stream>>>(st, swd, nullptr, n, loss_scale, host.l2(),
                                                          host.l2_per_sample());
    MLP_CUDA_LAUNCHED();
    // training: the masks of the next step (the rows are the data rows 0..n-1), as the CPU.
    const bool dropout = set_dropout(training, host.step(), nullptr, 0);
    if (hgrad) zero_table_grad();
    for (idx c0 = 0; c0 < n; c0 += chunk) {
      const idx cnt = std::min(chunk, n - c0);
      const T* xin = first_input(dev.x, nullptr, c0, cnt);
      move_dropout(nullptr, c0);
      forward(xin, cnt, true, dropout);
      loss<T>(ctx, loss_part.data(), hgrad ? d0.data() : nullptr, z[L - 1].data(), nullptr, dev.y + c0 * out,
              swd ? swd + c0 : nullptr, nullptr, cnt, out, host.loss(), acts[L - 1], alphas[L - 1], T(0), &st->coef,
              ls, ls_add);
      sum_partials(ctx, &st->data, loss_part.data(), int(loss_blocks(cnt)), /*accumulate=*/true);
      if (hgrad) backward(xin, cnt, c0 == 0 ? T(0) : T(1), dropout, dev.x, nullptr, c0);
    }
    weight_penalty<T>(ctx, pen_part.data(), hgrad ? grad.data() : nullptr, params.data(), n_weights, &st->l2_eff);
    total_loss_kernel<<<1, kThreads, 0, ctx.stream>>>(st, pen_part.data(), int(step_blocks<T>(n_weights)), loss_scale);
    MLP_CUDA_LAUNCHED();
    MLP_CUDA_CHECK(cudaMemcpyAsync(state_host.data(), st, sizeof(EpochState), cudaMemcpyDeviceToHost, ctx.stream));
    if (hgrad) download(hgrad, grad.data());
    ctx.sync();
    MLP_CHECK(state_host.data()->wsum > 0, "sample weights must sum to a positive number");
    return state_host.data()->data;
  }
};

template <class T>
DeviceNetwork<T>::DeviceNetwork(Network<T>& host, int ordinal) : impl_(std::make_unique<Impl>(host, ordinal)) {}

template <class T>
DeviceNetwork<T>::~DeviceNetwork() = default;

template <class T>
int DeviceNetwork<T>::ordinal() const {
  return impl_->ctx.device;
}

template <class T>
EpochResult DeviceNetwork<T>::train_epoch(const T* x, const T* y, const T* sw, idx n, idx batch_size, bool shuffle,
                                          double lr, const std::function<bool()>& interrupted, std::uintptr_t key) {
  return impl_->train_epoch(x, y, sw, n, batch_size, shuffle, lr, interrupted, key);
}

template <class T>
void DeviceNetwork<T>::predict(T* out, const T* x, idx n) {
  impl_->predict(out, x, n);
}

template <class T>
double DeviceNetwork<T>::loss_and_grad(const T* x, const T* y, const T* sw, idx n, T* grad, std::uintptr_t key,
                                       bool training) {
  return impl_->loss_and_grad(x, y, sw, n, grad, key, training);
}

template <class T>
void DeviceNetwork<T>::release_data() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  DeviceGuard g(impl_->ctx.device);
  impl_->ctx.sync();
  impl_->release();
}

template class DeviceNetwork<float>;
template class DeviceNetwork<double>;

}  // namespace mlp::cuda
