// Network training and inference. Each batch is cut into shards whose number depends only on the
// batch size; a shard's forward and backward pass writes its own gradient buffer, and the buffers
// are summed in shard order. So the weights are bit-identical whatever the thread count, and the
// thread count can follow the machine's load (auto mode measures 1 thread against all of them).
// One OpenMP region per epoch; threads take shards round-robin, then each thread sums and updates
// a fixed set of parameter blocks. No allocation inside the batch loop.
#include "network.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "activations.hpp"
#include "cpu/dense.hpp"
#include "cpu/kernels.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mlp {

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

namespace {

constexpr idx kMaxChunkRows = 2048;  // rows a thread pushes through the layers at once
constexpr idx kMaxChunkValues = idx(1) << 24;  // values in one scratch buffer (rows x widest layer)
constexpr idx kMinRowsPerShard = 32;
constexpr int kMaxShards = 16;       // also the most threads one fit can use
constexpr int kParamBlocks = 64;     // fixed blocks of the parameters for reduction and update
// predict on at most this many rows takes the few-rows path: the GEMM's unpacked small-m kernel
// (bit-identical to the packed one), on the calling thread. At most the smallest register tile.
constexpr idx kFewRows = 4;

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int thread_count() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}
inline void barrier() {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

// splitmix64 (Steele, Lea & Flood 2014): a tiny 64-bit generator, plenty for shuffling.
inline std::uint64_t next_u64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline idx below(std::uint64_t& s, idx bound) {
  return idx((static_cast<unsigned __int128>(next_u64(s)) * static_cast<unsigned __int128>(bound)) >> 64);
}

// Start of part t of n equal parts of [0, total).
inline idx split(idx total, int t, int n) { return total * t / n; }

// Rows per chunk for layers at most max_width wide: `wanted`, but few enough that one scratch
// buffer stays within kMaxChunkValues, so a very wide layer (millions of units) cannot make the
// per-thread buffers outgrow memory. The chunking of a shard changes how its gradient is summed,
// so it depends on the batch and the widths only: never on the thread count, nor on how large
// an earlier call left a thread's buffers.
inline idx chunk_rows(idx wanted, idx max_width) {
  return std::max<idx>(1, std::min(wanted, std::max<idx>(8, kMaxChunkValues / max_width)));
}

// Shards of a batch: a function of the batch size and the network, never of the thread count;
// a power of two so that 2 or 4 threads get equal shares. Wide networks get fewer, taller shards:
// each shard's dW GEMM has k = its row count, and the shard buffers summed per batch are P each.
inline int shards_for(idx batch, idx n_params) {
  const idx min_rows = std::clamp<idx>(n_params / 2048, kMinRowsPerShard, 128);
  int ns = 1;
  while (ns * 2 <= kMaxShards && idx(ns * 2) * min_rows <= batch) ns *= 2;
  return ns;
}

// Start row of shard s of ns in a batch of rb rows, a multiple of 8 (whole GEMM register tiles).
inline idx shard_start(idx rb, int s, int ns) { return s >= ns ? rb : (rb * s / ns) & ~idx(7); }

}  // namespace

void epoch_order(idx* perm, idx n, bool shuffle, std::uint64_t& rng) {
  std::iota(perm, perm + n, idx(0));
  if (shuffle)
    for (idx i = n - 1; i > 0; --i) std::swap(perm[i], perm[below(rng, i + 1)]);
}

template <class T>
Network<T>::Network(std::vector<idx> sizes, std::vector<Act> acts, std::vector<double> alphas,
                    LossKind loss, double loss_scale, std::vector<EmbeddingSpec> embeddings, idx n_inputs,
                    idx ensemble)
    : sizes_(std::move(sizes)), acts_(std::move(acts)), loss_(loss), loss_scale_(loss_scale),
      emb_(std::move(embeddings)), k_(ensemble) {
  MLP_CHECK(sizes_.size() >= 2, "a network needs at least one layer (sizes = [in, ..., out])");
  MLP_CHECK(acts_.size() == sizes_.size() - 1, "one activation per layer expected");
  MLP_CHECK(alphas.size() == acts_.size(), "one alpha per layer expected");
  MLP_CHECK(loss_valid(int(loss_)), "unknown loss");
  MLP_CHECK(std::isfinite(loss_scale_) && loss_scale_ > 0, "loss_scale must be finite and > 0");
  for (idx s : sizes_) MLP_CHECK(s > 0 && s <= (idx(1) << 31), "layer sizes must be in [1, 2^31]");
  const idx L = n_layers();
  for (idx l = 0; l < L; ++l) {
    MLP_CHECK(act_valid(int(acts_[l])), "unknown activation");
    MLP_CHECK(std::isfinite(alphas[l]) && alphas[l] >= 0, "activation alpha must be finite and >= 0");
    MLP_CHECK(acts_[l] != Act::Softmax || l == L - 1, "softmax is only allowed on the output layer");
    alphas_.push_back(T(alphas[l]));
  }
  const Act out = acts_[L - 1];
  MLP_CHECK((out == Act::Softmax) == (loss_ == LossKind::CategoricalCrossEntropy),
            "softmax output and categorical cross-entropy go together");
  MLP_CHECK(loss_ != LossKind::BinaryCrossEntropy || out == Act::Sigmoid,
            "binary cross-entropy needs a sigmoid output");
  MLP_CHECK(loss_ != LossKind::Poisson || out == Act::Identity,
            "poisson loss needs an identity output (the exp link is part of the loss)");
  idx off = 0;
  for (idx l = 0; l < L; ++l) {
    MLP_CHECK(sizes_[l] * sizes_[l + 1] < (idx(1) << 40), "layer too large");
    w_off_.push_back(off);
    off += sizes_[l] * sizes_[l + 1];
    b_off_.push_back(off);
    off += sizes_[l + 1];
  }
  n_inputs_ = emb_.empty() ? sizes_[0] : n_inputs;
  if (!emb_.empty()) {
    MLP_CHECK(n_inputs_ >= idx(emb_.size()) && n_inputs_ <= (idx(1) << 31), "n_inputs must cover the embedded columns");
    std::vector<char> embedded(std::size_t(n_inputs_), 0);
    idx pos = 0;
    for (const EmbeddingSpec& e : emb_) {
      MLP_CHECK(e.column >= 0 && e.column < n_inputs_ && !embedded[std::size_t(e.column)],
                "embedding columns must be distinct columns of x");
      MLP_CHECK(e.rows >= 1 && e.rows <= (idx(1) << 24), "embedding rows must be in [1, 2^24]");
      MLP_CHECK(e.width >= 1 && e.width <= (idx(1) << 31) && e.rows * e.width < (idx(1) << 40),
                "embedding width out of range");
      embedded[std::size_t(e.column)] = 1;
      emb_off_.push_back(off);
      off += e.rows * e.width;
      emb_pos_.push_back(pos);
      pos += e.width;
    }
    for (idx c = 0; c < n_inputs_; ++c)
      if (!embedded[std::size_t(c)]) numeric_cols_.push_back(c);
    MLP_CHECK(pos + idx(numeric_cols_.size()) == sizes_[0],
              "sizes[0] must equal the embedding widths plus the other columns");
  }
  MLP_CHECK(k_ >= 1 && k_ <= 1024, "ensemble must be in [1, 1024]");
  ens_off_ = off;
  if (k_ > 1) off += k_ * sizes_[0];
  dropout_.assign(std::size_t(L), 0.0);
  params_.assign(std::size_t(off), T(0));
}

template <class T>
void Network<T>::set_dropout(std::vector<double> rates) {
  MLP_CHECK(rates.size() == acts_.size(), "one dropout rate per layer expected");
  for (std::size_t l = 0; l < rates.size(); ++l) {
    MLP_CHECK(std::isfinite(rates[l]) && rates[l] >= 0 && rates[l] < 1, "dropout rates must be in [0, 1)");
    MLP_CHECK(rates[l] == 0 || (l + 1 < rates.size() && acts_[l] != Act::Softmax),
              "dropout applies to hidden layers only");
  }
  dropout_ = std::move(rates);
}

template <class T>
void Network<T>::set_schedule(SchedSlot slot, Schedule s) {
  MLP_CHECK(int(slot) >= 0 && int(slot) < kNumSchedSlots, "unknown schedule slot");
  s.origin = step_;
  MLP_CHECK(schedule_valid(s), "schedule settings out of range");
  sched_[int(slot)] = s;
}

template <class T>
void Network<T>::set_label_smoothing(double ls) {
  MLP_CHECK(std::isfinite(ls) && ls >= 0 && ls <= 1, "label_smoothing must be in [0, 1]");
  MLP_CHECK(ls == 0 || loss_ == LossKind::CategoricalCrossEntropy || loss_ == LossKind::BinaryCrossEntropy,
            "label smoothing needs a cross-entropy loss");
  label_smoothing_ = ls;
}

template <class T>
double Network<T>::dropout_rate(idx l) const {
  const double r = dropout_[std::size_t(l)];
  if (r == 0.0) return 0.0;
  const double v = r * schedule_factor(sched_[int(SchedSlot::Dropout)], step_);
  return v < 0.0 ? 0.0 : (v < r ? v : r);  // a schedule never raises the rate past its base
}

template <class T>
void Network<T>::embed_rows(T* x0, const T* x, const idx* rows, idx count) const {
  const idx in0 = sizes_[0];
  for (idx i = 0; i < count; ++i) {
    const T* xr = x + (rows ? rows[i] : i) * n_inputs_;
    T* dst = x0 + i * in0;
    for (std::size_t e = 0; e < emb_.size(); ++e) {
      const idx code = idx(xr[emb_[e].column]);
      std::copy_n(params_.data() + emb_off_[e] + code * emb_[e].width, emb_[e].width, dst + emb_pos_[e]);
    }
    T* num = dst + (in0 - idx(numeric_cols_.size()));
    for (std::size_t c = 0; c < numeric_cols_.size(); ++c) num[c] = xr[numeric_cols_[c]];
  }
}

template <class T>
void Network<T>::check_codes(const T* x, idx n) const {
  for (const EmbeddingSpec& e : emb_)
    for (idx i = 0; i < n; ++i) {
      const T v = x[i * n_inputs_ + e.column];
      MLP_CHECK(v >= T(0) && v < T(e.rows) && v == std::floor(v),
                "embedded column " + std::to_string(e.column) + " holds a value that is not a code in [0, " +
                    std::to_string(e.rows) + ")");
    }
}

template <class T>
void Network<T>::set_optimizer(const OptimizerConfig& cfg) {
  MLP_CHECK(std::isfinite(cfg.momentum) && cfg.momentum >= 0 && cfg.momentum <= 1, "momentum must be in [0, 1]");
  MLP_CHECK(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1, "betas must be in [0, 1)");
  MLP_CHECK(std::isfinite(cfg.eps) && cfg.eps > 0, "epsilon must be finite and > 0");
  MLP_CHECK(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0, "weight_decay must be finite and >= 0");
  MLP_CHECK(std::isfinite(cfg.clipnorm) && cfg.clipnorm >= 0, "clipnorm must be finite and >= 0");
  opt_ = cfg;
  reset_optimizer_state();
}

template <class T>
void Network<T>::reset_optimizer_state() {
  step_ = 0;
  const bool sgd_state = opt_.kind == OptKind::Sgd && opt_.momentum > 0;
  opt_m_.assign(opt_.kind == OptKind::Adam || sgd_state ? params_.size() : 0, T(0));
  opt_v_.assign(opt_.kind == OptKind::Adam ? params_.size() : 0, T(0));
}

template <class T>
std::vector<std::vector<T>*> Network<T>::optimizer_buffers() {
  std::vector<std::vector<T>*> out;
  if (!opt_m_.empty()) out.push_back(&opt_m_);
  if (!opt_v_.empty()) out.push_back(&opt_v_);
  return out;
}

template <class T>
int Network<T>::threads_for(int shards) const {
  const int base = n_threads_ > 0 ? n_threads_ : max_threads();
  return std::clamp(std::min(base, shards), 1, kMaxShards);
}

constexpr int kProbeEvery = 8;

bool AutoThreads::probe_due() {
  if (++since_probe < kProbeEvery) return false;
  since_probe = 0;
  return true;
}

int AutoThreads::choose(int all) {
  if (all == 1 || speed[1] == 0.0) return all;
  if (speed[0] == 0.0) return 1;
  const int winner = best(all);
  return probe_due() ? (winner == 1 ? all : 1) : winner;
}

void AutoThreads::record(int nt, double seconds_per_row) { speed[nt == 1 ? 0 : 1] = seconds_per_row; }

template <class T>
int Network<T>::choose_threads(int shards, AutoThreads& auto_threads) const {
  const int all = threads_for(shards);
  return n_threads_ > 0 ? all : auto_threads.choose(all);
}

template <class T>
void Network<T>::ensure_work(int nt, idx cap, int shards) {
  if (int(work_.size()) < nt) work_.resize(std::size_t(nt));
  const idx L = n_layers();
  idx maxw = 1;
  for (idx l = 1; l <= L; ++l) maxw = std::max(maxw, sizes_[l]);
  for (int t = 0; t < nt; ++t) {
    Work& w = work_[std::size_t(t)];
    // Dropout can be switched on after the buffers were made: its keys are sized on their own.
    if (w.keys.size() != std::size_t(L)) w.keys.assign(std::size_t(L), {});
    if (w.masks.size() != std::size_t(L)) w.masks.assign(std::size_t(L), {});
    for (idx l = 0; l < L; ++l)
      if (dropout_[std::size_t(l)] > 0 && w.keys[l].size() < std::size_t(std::max(cap, w.cap) * k_))
        w.keys[l].resize(std::size_t(std::max(cap, w.cap) * k_));
    if (w.cap >= cap) continue;
    w.z.assign(std::size_t(L), {});
    w.a.assign(std::size_t(L), {});
    const idx rows = cap * k_;  // an ensemble runs k member rows per sample
    for (idx l = 0; l < L; ++l) {
      const std::size_t sz = std::size_t(rows * sizes_[l + 1]);
      w.a[l].resize(sz);
      if (act_needs_z(acts_[l]) || l == L - 1) w.z[l].resize(sz);
    }
    w.d0.resize(std::size_t(rows * maxw));
    w.d1.resize(std::size_t(rows * maxw));
    if (!emb_.empty() || k_ > 1) {
      w.x0.resize(std::size_t(cap * sizes_[0]));
      w.dx0.resize(std::size_t(cap * sizes_[0]));
    }
    if (k_ > 1) {
      w.xe.resize(std::size_t(rows * sizes_[0]));
      w.dxe.resize(std::size_t(rows * sizes_[0]));
    }

    w.y.resize(std::size_t(rows * sizes_[L]));
    w.w.resize(std::size_t(rows));
    w.cap = cap;
  }
  if (packed_fwd_.size() != std::size_t(L)) {
    packed_fwd_.assign(std::size_t(L), {});
    packed_bwd_.assign(std::size_t(L), {});
    for (idx l = 0; l < L; ++l) {
      packed_fwd_[l].resize(std::size_t(cpu::packed_weights_size<T>(sizes_[l], sizes_[l + 1], false)));
      if (l > 0) packed_bwd_[l].resize(std::size_t(cpu::packed_weights_size<T>(sizes_[l], sizes_[l + 1], true)));
    }
  }
  if (int(shard_grad_.size()) < shards) shard_grad_.resize(std::size_t(shards));
  for (int s = 0; s < shards; ++s)
    if (shard_grad_[std::size_t(s)].size() != params_.size()) shard_grad_[std::size_t(s)].assign(params_.size(), T(0));
}

template <class T>
idx Network<T>::chunk_for(idx shard_rows) const {
  idx maxw = 1;
  for (idx l = 1; l <= n_layers(); ++l) maxw = std::max(maxw, sizes_[l]);
  if (k_ > 1) maxw = std::max(maxw, sizes_[0]);
  // An ensemble's chunk of c samples is c * k rows: both limits count rows.
  return chunk_rows(std::min(shard_rows, std::max<idx>(1, kMaxChunkRows / k_)), maxw * k_);
}

template <class T>
double Network<T>::accumulate(Work& w, T* grad, const T* x, const T* y, const T* sw, const idx* rows,
                              idx count, idx chunk, T coef, bool training) {
  const cpu::Kernels<T>& k = cpu::kernels<T>();
  const idx L = n_layers();
  const idx out = sizes_[L];
  double loss = 0.0;
  // The cross-entropies take the output layer's logits alone (loss.cpp): training writes them
  // and skips the softmax / sigmoid pass over the output (w.a[L - 1] stays unused).
  const bool logits_only = loss_ == LossKind::CategoricalCrossEntropy || loss_ == LossKind::BinaryCrossEntropy;
  const bool embedded = !emb_.empty();
  // Dropout masks of this step, per hidden layer (rate 0: none).
  std::vector<DropMask<T>>& masks = w.masks;
  bool any_drop = false;
  for (idx l = 0; l < L; ++l) {
    masks[l] = DropMask<T>();
    const double rate = training ? dropout_rate(l) : 0.0;
    if (rate <= 0.0) continue;
    masks[l].keys = w.keys[l].data();
    masks[l].threshold = dropout_threshold(rate);
    masks[l].scale = T(1.0 / (1.0 - rate));
    any_drop = true;
  }
  auto mask = [&](idx l) -> const DropMask<T>* { return masks[l].keys ? &masks[l] : nullptr; };
  // Label smoothing: y (1 - ls) + ls / K, applied as the targets are gathered.
  const T ls = T(label_smoothing_);
  const T ls_add = T(label_smoothing_ / double(loss_ == LossKind::BinaryCrossEntropy ? 2 : out));
  const idx K = k_, in0 = sizes_[0];
  const bool ens = K > 1;
  const T coef_k = coef / T(K);  // an ensemble's loss is the mean of its members'
  if ((embedded || ens) && count > 0)  // tables and adapters are scatter-added: start from 0
    std::fill(grad + (embedded ? emb_off_[0] : ens_off_), grad + n_params(), T(0));
  for (idx c0 = 0; c0 < count; c0 += chunk) {
    const idx cnt = std::min<idx>(chunk, count - c0);
    const idx m = cnt * K;  // rows through the layers: member g of sample i is row i * K + g
    const idx* r = rows + c0;
    if (any_drop)
      for (idx l = 0; l + 1 < L; ++l)
        if (masks[l].keys)
          for (idx i = 0; i < cnt; ++i)
            for (idx g = 0; g < K; ++g)
              w.keys[l][std::size_t(i * K + g)] = dropout_row_key(drop_seed_, step_, l, r[i] * K + g);
    if (embedded) embed_rows(w.x0.data(), x, r, cnt);
    // Sample i's first-layer input (in0 values): its embedded row, or its row of x.
    auto source = [&](idx i) { return embedded ? w.x0.data() + i * in0 : x + r[i] * n_inputs_; };
    if (ens) {
      const T* adapters = params_.data() + ens_off_;
      for (idx i = 0; i < cnt; ++i) {
        const T* src = source(i);
        for (idx g = 0; g < K; ++g) {
          T* dst = w.xe.data() + (i * K + g) * in0;
          const T* rg = adapters + g * in0;
          for (idx j = 0; j < in0; ++j) dst[j] = src[j] * rg[j];
        }
      }
    }
    const T* x_in = ens ? w.xe.data() : (embedded ? w.x0.data() : x);
    const idx* r_in = ens || embedded ? nullptr : r;
    for (idx l = 0; l < L; ++l) {
      const T* in = l == 0 ? x_in : w.a[l - 1].data();
      T* zl = w.z[l].empty() ? nullptr : w.z[l].data();
      const bool skip_act = logits_only && l == L - 1;
      cpu::dense_forward<T>(skip_act ? nullptr : zl, skip_act ? zl : w.a[l].data(), in,
                            params_.data() + w_off_[l], params_.data() + b_off_[l], m, sizes_[l],
                            sizes_[l + 1], skip_act ? Act::Identity : acts_[l], alphas_[l],
                            l == 0 ? r_in : nullptr, packed_fwd_[l].empty() ? nullptr : packed_fwd_[l].data(),
                            mask(l));
    }
    if (out == 1 && K == 1) {  // one target (a regressor): a gather, not a copy call per row
      for (idx i = 0; i < cnt; ++i) w.y[std::size_t(i)] = y[r[i]];
    } else {
      for (idx i = 0; i < cnt; ++i)
        for (idx g = 0; g < K; ++g) std::copy_n(y + r[i] * out, out, w.y.data() + (i * K + g) * out);
    }
    if (ls != T(0))
      for (idx i = 0; i < m * out; ++i) w.y[std::size_t(i)] = w.y[std::size_t(i)] * (T(1) - ls) + ls_add;
    if (sw)
      for (idx i = 0; i < cnt; ++i)
        for (idx g = 0; g < K; ++g) w.w[std::size_t(i * K + g)] = sw[r[i]];
    const T* zL = w.z[L - 1].data();
    const T* aL = w.a[L - 1].data();
    const T* wts = sw ? w.w.data() : nullptr;
    const double chunk_loss = k.loss_forward(zL, aL, w.y.data(), wts, m, out, loss_);
    loss += ens ? chunk_loss / double(K) : chunk_loss;
    k.loss_backward(w.d0.data(), zL, aL, w.y.data(), wts, m, out, loss_, acts_[L - 1], alphas_[L - 1],
                    ens ? coef_k : coef);
    T* dcur = w.d0.data();
    T* dnext = w.d1.data();
    const T beta = c0 == 0 ? T(0) : T(1);
    for (idx l = L - 1; l >= 0; --l) {
      const T* in = l == 0 ? x_in : w.a[l - 1].data();
      T* dx = l > 0 ? dnext : (ens ? w.dxe.data() : (embedded ? w.dx0.data() : nullptr));
      const Act pa = l > 0 ? acts_[l - 1] : Act::Identity;
      const T palpha = l > 0 ? alphas_[l - 1] : T(0);
      const T* pz = l > 0 && !w.z[l - 1].empty() ? w.z[l - 1].data() : nullptr;
      const T* pa_buf = l > 0 ? w.a[l - 1].data() : nullptr;
      cpu::dense_backward<T>(grad + w_off_[l], grad + b_off_[l], dx, dcur, in,
                             params_.data() + w_off_[l], m, sizes_[l], sizes_[l + 1], beta,
                             l == 0 ? r_in : nullptr, pa, palpha, pz, pa_buf,
                             packed_bwd_[l].empty() ? nullptr : packed_bwd_[l].data(),
                             l > 0 ? mask(l - 1) : nullptr);
      std::swap(dcur, dnext);
    }
    if (ens) {  // the adapters' gradient, and (for the tables) the samples' input gradient
      const T* adapters = params_.data() + ens_off_;
      for (idx i = 0; i < cnt; ++i) {
        const T* src = source(i);
        T* d0 = embedded ? w.dx0.data() + i * in0 : nullptr;
        if (d0) std::fill(d0, d0 + in0, T(0));
        for (idx g = 0; g < K; ++g) {
          const T* d = w.dxe.data() + (i * K + g) * in0;
          T* gr = grad + ens_off_ + g * in0;
          const T* rg = adapters + g * in0;
          for (idx j = 0; j < in0; ++j) gr[j] += d[j] * src[j];
          if (d0)
            for (idx j = 0; j < in0; ++j) d0[j] += d[j] * rg[j];
        }
      }
    }
    if (embedded) {  // scatter-add dL/dx0 into the tables' rows, row by row: a fixed order
      for (idx i = 0; i < cnt; ++i) {
        const T* xr = x + r[i] * n_inputs_;
        const T* d = w.dx0.data() + i * in0;
        for (std::size_t e = 0; e < emb_.size(); ++e) {
          const idx wd = emb_[e].width;
          T* ge = grad + emb_off_[e] + idx(xr[emb_[e].column]) * wd;
          const T* de = d + emb_pos_[e];
          for (idx j = 0; j < wd; ++j) ge[j] += de[j];
        }
      }
    }
  }
  return loss;
}

// Parameter block b of kParamBlocks: [c0, c1), 16-aligned. Blocks, not threads, fix the order
// of every reduction, so the result does not depend on how blocks are shared among threads.
template <class T>
std::pair<idx, idx> Network<T>::block(int b) const {
  const idx P = n_params();
  const idx c0 = b == 0 ? 0 : (P * b / kParamBlocks) & ~idx(15);
  const idx c1 = b == kParamBlocks - 1 ? P : (P * (b + 1) / kParamBlocks) & ~idx(15);
  return {c0, std::max(c0, c1)};
}

// The learning rate of the next step: Adam's includes its bias correction for step step_ + 1.
template <class T>
double Network<T>::step_lr(double lr) const {
  if (opt_.kind != OptKind::Adam) return lr;
  const double t = double(step_ + 1);
  return lr * std::sqrt(1.0 - std::pow(opt_.beta2, t)) / (1.0 - std::pow(opt_.beta1, t));
}

// Sums the gradient buffers of the shards in ids over parameter block b into shard_grad_[0]
// (unless summed: a clipping pass did it already), then either computes the optimizer's step
// there (update; *finite says whether every weight stays finite) or writes the gradient with its
// L2 term to grad_out. gscale scales the data gradient (clipping); decay is lr * weight_decay.
// Returns the block's sum of squared weights (before the update) for the L2 penalty.
// lr is the step's rate as step_lr gives it.
template <class T>
double Network<T>::reduce_and_step(int b, const int* ids, int n_ids, double lr, double l2_eff, bool update,
                                   T* grad_out, bool* finite, bool summed, double gscale, double decay) {
  const cpu::Kernels<T>& k = cpu::kernels<T>();
  const auto [c0, c1] = block(b);
  *finite = true;
  if (c1 <= c0) return 0.0;
  T* g = shard_grad_[0].data() + c0;
  if (!summed) {
    const T* bufs[kMaxShards];
    for (int s = 0; s < n_ids; ++s) bufs[s] = shard_grad_[std::size_t(ids[s])].data() + c0;
    k.sum_buffers(g, bufs, n_ids, c1 - c0);
  }
  double sq = 0.0;
  const T lr_t = T(lr);  // Adam's bias correction already in (step_lr)
  const T gs = T(gscale);
  // Parameter ranges in order: per layer its weights (penalized) then its bias, then the tables.
  auto visit = [&](idx s0, idx s1, bool weight) {
    const idx lo = std::max(s0, c0), hi = std::min(s1, c1);
    if (lo >= hi) return;
    const T l2 = weight ? T(l2_eff) : T(0);
    const T dec = weight || opt_.decay_bias ? T(decay) : T(0);
    const T* p = params_.data() + lo;
    T* gl = g + (lo - c0);
    if (weight && l2_eff != 0.0) sq += k.sum_squares(p, hi - lo);
    bool ok = true;
    if (!update) {
      for (idx i = 0; i < hi - lo; ++i) grad_out[lo + i] = gl[i] + l2 * p[i];
    } else if (opt_.kind == OptKind::Adam) {
      ok = k.adam_delta(gl, p, gl, opt_m_.data() + lo, opt_v_.data() + lo, hi - lo, lr_t, T(opt_.beta1),
                        T(1.0 - opt_.beta1), T(opt_.beta2), T(1.0 - opt_.beta2), T(opt_.eps), l2, gs, dec);
    } else {
      ok = k.sgd_delta(gl, p, gl, opt_m_.empty() ? nullptr : opt_m_.data() + lo, hi - lo, lr_t,
                       T(opt_.momentum), opt_.nesterov, l2, gs, dec);
    }
    *finite = *finite && ok;
  };
  for (idx l = 0; l < n_layers(); ++l) {
    visit(w_off_[l], b_off_[l], true);
    visit(b_off_[l], b_off_[l] + sizes_[l + 1], false);
  }
  if (!emb_off_.empty()) visit(emb_off_[0], ens_off_, true);  // the tables: weights
  if (k_ > 1) visit(ens_off_, n_params(), false);             // the adapters: like biases
  return sq;
}

// Shards of ns that own rows of a batch of rb rows (a trailing batch can leave some empty).
inline int shards_with_rows(idx rb, int ns, int* ids) {
  int n = 0;
  for (int s = 0; s < ns; ++s)
    if (shard_start(rb, s + 1, ns) > shard_start(rb, s, ns)) ids[n++] = s;
  return n;
}

// Packs layer l's weights for the forward pass and (l > 0) transposed for the backward pass,
// into dst_fwd / dst_bwd (empty vectors: the layer is too narrow to use packed weights).
template <class T>
void pack_layer(std::vector<T>& dst_fwd, std::vector<T>& dst_bwd, const T* w, idx in, idx out, bool backward) {
  if (!dst_fwd.empty()) cpu::pack_weights<T>(dst_fwd.data(), w, in, out, false);
  if (backward && !dst_bwd.empty()) cpu::pack_weights<T>(dst_bwd.data(), w, in, out, true);
}

template <class T>
EpochResult Network<T>::train_epoch(const T* x, const T* y, const T* sw, idx n, idx batch_size,
                                    bool shuffle, double lr, const std::function<bool()>& interrupted,
                                    const std::int64_t* order) {
  MLP_CHECK(n > 0, "train_epoch needs at least one row");
  MLP_CHECK(batch_size > 0, "batch_size must be > 0");
  MLP_CHECK(std::isfinite(lr) && lr >= 0, "learning rate must be finite and >= 0");
  const idx batch = std::min(batch_size, n);
  check_codes(x, n);
  perm_.resize(std::size_t(n));
  if (order != nullptr) {
    // A caller's order (the estimators draw scikit-learn's): every row exactly once, since the
    // rows it names are read without further checks.
    std::vector<char> seen(std::size_t(n), 0);
    for (idx i = 0; i < n; ++i) {
      const std::int64_t r = order[i];
      MLP_CHECK(r >= 0 && r < std::int64_t(n) && !seen[std::size_t(r)],
                "order must be a permutation of the row indices");
      seen[std::size_t(r)] = 1;
      perm_[std::size_t(i)] = idx(r);
    }
  } else {
    epoch_order(perm_.data(), n, shuffle, rng_);
  }
  const int ns = shards_for(batch, n_params());
  const int all = threads_for(ns);
  const idx chunk = chunk_for((batch + ns - 1) / ns + 7);  // + 7: shards start on 8-row boundaries
  ensure_work(all, chunk, ns);
  const idx nb = (n + batch - 1) / batch;
  std::vector<double> loss_slot(std::size_t(ns), 0.0), pen_slot(std::size_t(kParamBlocks), 0.0);
  std::vector<char> finite_slot(std::size_t(kParamBlocks), 1);
  std::vector<double> gsq_slot(opt_.clipnorm > 0 ? std::size_t(kParamBlocks) : 0, 0.0);
  EpochResult res;
  double epoch_sum = 0.0, weight_total = 0.0;
  bool stop = false;
  InterruptPoll poll_interrupt(interrupted);
  const idx* perm = perm_.data();

  // Batches [b0, b1) with nt threads.
  auto run = [&](idx b0, idx b1, int nt) {
    last_threads_ = nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
      const int tid = thread_id(), nthr = thread_count();
      for (idx b = b0; b < b1; ++b) {
        const idx s = b * batch, rb = std::min(n, s + batch) - s;
        double wsum = double(rb);
        if (sw) {
          wsum = 0.0;
          for (idx i = s; i < s + rb; ++i) wsum += double(sw[perm[i]]);
        }
        const T coef = T(loss_scale_ / wsum);
        for (idx l = tid; l < n_layers(); l += nthr)
          pack_layer(packed_fwd_[l], packed_bwd_[l], params_.data() + w_off_[l], sizes_[l], sizes_[l + 1], l > 0);
        barrier();
        for (int sh = tid; sh < ns; sh += nthr) {
          const idx r0 = shard_start(rb, sh, ns), r1 = shard_start(rb, sh + 1, ns);
          loss_slot[sh] = r1 > r0 ? accumulate(work_[tid], shard_grad_[sh].data(), x, y, sw, perm + s + r0,
                                               r1 - r0, chunk, coef, true)
                                  : 0.0;
        }
        barrier();
        if (stop) break;
        double data = 0.0;
        for (int sh = 0; sh < ns; ++sh) data += loss_slot[sh];
        data *= loss_scale_ / wsum;
        if (!std::isfinite(data) || !(wsum > 0)) {
          if (tid == 0) res.diverged = true;
          break;
        }
        int ids[kMaxShards];
        const int n_ids = shards_with_rows(rb, ns, ids);
        const double l2_eff = l2_ / (l2_per_sample_ ? wsum : 1.0);
        // Once per batch, not per block: the scheduled rate, Adam's bias-corrected one, the decay.
        const double lr_b = lr * schedule_factor(sched_[int(SchedSlot::LearningRate)], step_);
        const double lr_step = step_lr(lr_b);
        const double decay =
            lr_b * opt_.weight_decay * schedule_factor(sched_[int(SchedSlot::WeightDecay)], step_);
        const int blk0 = split(kParamBlocks, tid, nthr), blk1 = split(kParamBlocks, tid + 1, nthr);
        double gscale = 1.0;
        const bool clip = opt_.clipnorm > 0;
        if (clip) {  // the global norm needs the whole sum first: sum and square in one pass
          const cpu::Kernels<T>& k = cpu::kernels<T>();
          for (int blk = blk0; blk < blk1; ++blk) {
            const auto [c0, c1] = block(blk);
            if (c1 <= c0) { gsq_slot[blk] = 0.0; continue; }
            const T* bufs[kMaxShards];
            for (int q = 0; q < n_ids; ++q) bufs[q] = shard_grad_[std::size_t(ids[q])].data() + c0;
            k.sum_buffers(shard_grad_[0].data() + c0, bufs, n_ids, c1 - c0);
            gsq_slot[blk] = k.sum_squares(shard_grad_[0].data() + c0, c1 - c0);
          }
          barrier();
          double sq = 0.0;  // every thread sums the blocks in the same order: the same factor
          for (int blk = 0; blk < kParamBlocks; ++blk) sq += gsq_slot[blk];
          gscale = std::min(1.0, opt_.clipnorm / (std::sqrt(sq) + 1e-6));
        }
        for (int blk = blk0; blk < blk1; ++blk) {
          bool finite = true;
          pen_slot[blk] = reduce_and_step(blk, ids, n_ids, lr_step, l2_eff, true, nullptr, &finite, clip, gscale,
                                          decay);
          finite_slot[blk] = finite ? 1 : 0;
        }
        barrier();
        bool all_finite = true;
        for (int blk = 0; blk < kParamBlocks; ++blk) all_finite = all_finite && finite_slot[blk];
        if (!all_finite) {  // the step would overflow a weight: refuse it and stop
          if (tid == 0) res.diverged = true;
          break;
        }
        {
          const idx c0 = block(split(kParamBlocks, tid, nthr)).first;
          const idx c1 = tid == nthr - 1 ? n_params() : block(split(kParamBlocks, tid + 1, nthr)).first;
          if (c1 > c0) cpu::kernels<T>().add_inplace(params_.data() + c0, shard_grad_[0].data() + c0, c1 - c0);
        }
        if (tid == 0) {
          double pen = 0.0;
          for (int blk = 0; blk < kParamBlocks; ++blk) pen += pen_slot[blk];
          epoch_sum += (data + 0.5 * l2_eff * pen) * wsum;
          weight_total += wsum;
          ++step_;
          ++res.batches;
          if (poll_interrupt()) {
            stop = true;
            res.interrupted = true;
          }
        }
        barrier();
      }
    }
  };
  // Runs batches [b0, b1) with nt threads; in auto mode, records their time per row.
  auto timed = [&](idx b0, idx b1, int nt) {
    if (b1 <= b0 || stop || res.diverged) return;
    const auto t0 = std::chrono::steady_clock::now();
    run(b0, b1, nt);
    if (n_threads_ > 0 || all == 1 || stop || res.diverged) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    train_auto_.record(nt, secs / double(std::min(n, b1 * batch) - b0 * batch));
  };

  AutoThreads& at = train_auto_;
  const idx probe = nb / 8 > 2 ? nb / 8 : nb / 4;  // batches a probe segment runs
  if (n_threads_ > 0 || all == 1) {
    run(0, nb, all);
  } else if (probe == 0) {  // under 4 batches: whole epochs are the probes
    timed(0, nb, at.choose(all));
  } else if (!at.measured()) {  // the first epoch: all threads, then one, then the faster
    timed(0, probe, all);
    timed(probe, 2 * probe, 1);
    timed(2 * probe, nb, at.best(all));
  } else if (at.probe_due()) {  // the slower count again, since the load changes
    timed(0, probe, at.best(all) == 1 ? all : 1);
    timed(probe, nb, at.best(all));
  } else {
    timed(0, nb, at.best(all));
  }
  res.loss = res.diverged || weight_total <= 0 ? std::numeric_limits<double>::quiet_NaN()
                                               : epoch_sum / weight_total;
  return res;
}

// out (cnt, O) for rows x[0:cnt) (n_inputs_ wide). b0, b1: cnt * k_ * predict_width() values
// each; b2: cnt * max(sizes[0], k_ * O) (used with embeddings or an ensemble). packed: each
// layer's packed weights, or null entries (the few-rows path packs nothing).
template <class T>
void Network<T>::forward_rows(T* out, const T* x, idx cnt, T* b0, T* b1, T* b2,
                              const std::vector<std::vector<T>>* packed) const {
  const idx L = n_layers(), K = k_, in0 = sizes_[0], O = sizes_[L];
  const T* in = x;
  T* cur = b0;
  T* nxt = b1;
  if (!emb_.empty()) {  // the first layer's input (cnt, in0)
    embed_rows(K > 1 ? b2 : nxt, x, nullptr, cnt);
    in = K > 1 ? b2 : nxt;
  }
  if (K > 1) {  // member g of row i is row i * K + g, its input times adapter g
    const T* adapters = params_.data() + ens_off_;
    for (idx i = 0; i < cnt; ++i)
      for (idx g = 0; g < K; ++g) {
        T* dst = nxt + (i * K + g) * in0;
        const T* src = in + i * in0;
        const T* rg = adapters + g * in0;
        for (idx j = 0; j < in0; ++j) dst[j] = src[j] * rg[j];
      }
    in = nxt;
  }
  for (idx l = 0; l < L; ++l) {
    T* dst = l == L - 1 ? (K > 1 ? b2 : out) : cur;
    const std::vector<T>* pk = packed ? &(*packed)[std::size_t(l)] : nullptr;
    cpu::dense_forward<T>(nullptr, dst, in, params_.data() + w_off_[l], params_.data() + b_off_[l], cnt * K,
                          sizes_[l], sizes_[l + 1], acts_[l], alphas_[l], nullptr,
                          pk && !pk->empty() ? pk->data() : nullptr);
    in = dst;
    std::swap(cur, nxt);
  }
  if (K > 1) {  // the members' mean, in member order
    const T inv = T(1) / T(K);
    for (idx i = 0; i < cnt; ++i) {
      T* o = out + i * O;
      const T* mem = b2 + i * K * O;
      std::copy_n(mem, O, o);
      for (idx g = 1; g < K; ++g)
        for (idx j = 0; j < O; ++j) o[j] += mem[g * O + j];
      for (idx j = 0; j < O; ++j) o[j] *= inv;
    }
  }
}

template <class T>
void Network<T>::predict(T* out, const T* x, idx n) {
  if (n <= 0) return;
  check_codes(x, n);
  const idx L = n_layers(), K = k_;
  idx maxw = 1;
  for (idx l = 1; l < L; ++l) maxw = std::max(maxw, sizes_[l]);
  if (!emb_.empty() || K > 1) maxw = std::max(maxw, sizes_[0]);  // the first input shares them
  const idx extra_width = std::max(sizes_[0], K * sizes_[L]);
  if (n <= kFewRows) {  // a request of a few rows: no packing, no thread team, no allocation
    thread_local std::vector<T> small0, small1, small2;
    const idx need = n * K * maxw;
    if (small0.size() < std::size_t(need)) {
      small0.resize(std::size_t(need));
      small1.resize(std::size_t(need));
    }
    if (small2.size() < std::size_t(n * extra_width)) small2.resize(std::size_t(n * extra_width));
    forward_rows(out, x, n, small0.data(), small1.data(), small2.data(), nullptr);
    return;
  }
  const idx chunk = chunk_rows(std::max<idx>(1, 256 / K), maxw * K);
  const idx nchunks = (n + chunk - 1) / chunk;
  const int nt = int(std::min<idx>(threads_for(kMaxShards), nchunks));
  // Local packed weights: predict may run from several Python threads at once on one network.
  std::vector<std::vector<T>> packed(static_cast<std::size_t>(L)), unused(static_cast<std::size_t>(L));
  for (idx l = 0; l < L; ++l) {
    packed[l].resize(std::size_t(cpu::packed_weights_size<T>(sizes_[l], sizes_[l + 1], false)));
    pack_layer(packed[l], unused[l], params_.data() + w_off_[l], sizes_[l], sizes_[l + 1], false);
  }
  const bool need_extra = !emb_.empty() || K > 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
    std::vector<T> buf0(std::size_t(chunk * K * maxw)), buf1(std::size_t(chunk * K * maxw));
    std::vector<T> buf2(need_extra ? std::size_t(chunk * extra_width) : 0);
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (idx c = 0; c < nchunks; ++c) {
      const idx r0 = c * chunk, cnt = std::min(chunk, n - r0);
      forward_rows(out + r0 * sizes_[L], x + r0 * n_inputs_, cnt, buf0.data(), buf1.data(), buf2.data(),
                   &packed);
    }
  }
}

template <class T>
double Network<T>::loss_and_grad(const T* x, const T* y, const T* sw, idx n, T* grad, bool training) {
  MLP_CHECK(n > 0, "loss needs at least one row");
  check_codes(x, n);
  std::vector<idx> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), idx(0));
  const int ns = shards_for(n, n_params());
  const int nt = choose_threads(ns, grad_auto_);
  const auto t_start = std::chrono::steady_clock::now();
  const idx chunk = chunk_for((n + ns - 1) / ns + 7);
  ensure_work(nt, chunk, ns);
  double wsum = double(n);
  if (sw) {
    wsum = 0.0;
    for (idx i = 0; i < n; ++i) wsum += double(sw[i]);
  }
  MLP_CHECK(wsum > 0, "sample weights must sum to a positive number");
  const T coef = T(loss_scale_ / wsum);
  const double l2_eff = l2_ / (l2_per_sample_ ? wsum : 1.0);
  std::vector<double> loss_slot(std::size_t(ns), 0.0), pen_slot(std::size_t(kParamBlocks), 0.0);
  std::vector<T> scratch(grad ? 0 : params_.size());
  T* gout = grad ? grad : scratch.data();
  int ids[kMaxShards];
  const int n_ids = shards_with_rows(n, ns, ids);
  for (idx l = 0; l < n_layers(); ++l)
    pack_layer(packed_fwd_[l], packed_bwd_[l], params_.data() + w_off_[l], sizes_[l], sizes_[l + 1], l > 0);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
  {
    const int tid = thread_id(), nthr = thread_count();
    for (int sh = tid; sh < ns; sh += nthr) {
      const idx r0 = shard_start(n, sh, ns), r1 = shard_start(n, sh + 1, ns);
      loss_slot[sh] = r1 > r0 ? accumulate(work_[tid], shard_grad_[sh].data(), x, y, sw, rows.data() + r0,
                                           r1 - r0, chunk, coef, training)
                              : 0.0;
    }
    barrier();
    for (int blk = split(kParamBlocks, tid, nthr); blk < split(kParamBlocks, tid + 1, nthr); ++blk) {
      bool finite = true;
      pen_slot[blk] = reduce_and_step(blk, ids, n_ids, 0.0, l2_eff, false, gout, &finite);
    }
  }
  double data = 0.0, pen = 0.0;
  for (int sh = 0; sh < ns; ++sh) data += loss_slot[sh];
  for (int blk = 0; blk < kParamBlocks; ++blk) pen += pen_slot[blk];
  grad_auto_.record(nt, std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() / double(n));
  return data * loss_scale_ / wsum + 0.5 * l2_eff * pen;
}

template class Network<float>;
template class Network<double>;

}  // namespace mlp
