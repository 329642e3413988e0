// Network: a chain of dense layers that owns its weights (one flat buffer), its optimizer state
// and every scratch buffer, and runs whole epochs (shuffle, forward, loss, backward, update) natively.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "common.hpp"
#include "dropout.hpp"
#include "schedule.hpp"

namespace mlp {

struct OptimizerConfig {
  OptKind kind = OptKind::Sgd;
  double momentum = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  // Decoupled weight decay (AdamW, Loshchilov & Hutter): p -= lr * weight_decay * p each step,
  // with lr the scheduled rate (before Adam's bias correction); biases only when decay_bias.
  double weight_decay = 0.0;
  bool decay_bias = false;
  // Clipping by global norm: the data gradient (L2 term excluded) is scaled by
  // min(1, clipnorm / (||g|| + 1e-6)) before the update; 0 turns it off.
  double clipnorm = 0.0;
};

// An embedding of input column `column`, whose values are integer codes in [0, rows): the first
// Dense layer sees the code's row of a (rows, width) table in place of the column.
struct EmbeddingSpec {
  idx column = 0, rows = 0, width = 0;
};

// The schedules a network follows, by slot.
enum class SchedSlot : int { LearningRate = 0, WeightDecay = 1, Dropout = 2 };
constexpr int kNumSchedSlots = 3;

struct EpochResult {
  double loss = 0.0;         // sample-weighted mean of the batch losses (L2 included)
  bool diverged = false;     // a batch loss was not finite; that batch was not applied
  bool interrupted = false;  // the interrupt callback asked to stop
  idx batches = 0;           // batches applied
};

// train_epoch's interrupt callback (which takes the GIL), asked at most every 25 ms; the CPU and
// the CUDA loop call it once per batch.
class InterruptPoll {
 public:
  explicit InterruptPoll(const std::function<bool()>& interrupted) : interrupted_(interrupted) {}
  // Whether the callback was due and asked to stop.
  bool operator()() {
    const auto now = std::chrono::steady_clock::now();
    if (!interrupted_ || now - last_ <= std::chrono::milliseconds(25)) return false;
    last_ = now;
    return interrupted_();
  }

 private:
  const std::function<bool()>& interrupted_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Thread count in auto mode. Two threads finish a batch sooner on an idle machine, but when
// another process holds a core every barrier waits for a thread the scheduler has parked, and one
// thread wins by far. Since shards make the result independent of the thread count, auto mode
// measures both and keeps the faster per row. train_epoch measures on a few batches (a probe
// segment: all threads, then one, at the start of the first epoch; the slower count again every
// few epochs) so that a short fit does not spend whole epochs on the slower count; loss_and_grad,
// one pass per call, measures whole calls.
struct AutoThreads {
  double speed[2] = {0.0, 0.0};  // seconds per row with 1 / all threads, latest measurement
  int since_probe = 0;
  bool measured() const { return speed[0] > 0.0 && speed[1] > 0.0; }
  // The faster count; one thread must win by 10%, since the first batches after a call (cold
  // caches, waking the thread team) fall to the all-threads measurement.
  int best(int all) const { return speed[0] * 1.1 < speed[1] ? 1 : all; }
  bool probe_due();  // counts calls: true every kProbeEvery-th
  int choose(int all);
  void record(int nt, double seconds_per_row);
};

template <class T>
class Network {
 public:
  // sizes = [in, h1, ..., out]; one activation and alpha per layer.
  // L = loss_scale * sum_n w_n sum_k l(n, k) / sum_n w_n  (+ L2 penalty).
  // With embeddings, x has n_inputs columns: the first layer's input (sizes[0] wide) is each
  // embedded column's table row, in the order given, then the other columns in their order.
  // The tables follow the layers' weights and biases in the parameter buffer.
  // With ensemble = k > 1, each sample is k members (TabM-mini's BatchEnsemble): member g's
  // first-layer input is the sample's times a learned adapter r_g (k x sizes[0], after the
  // tables in the parameter buffer), every layer is shared, the loss is the mean of the members'
  // losses, and predict averages the members' outputs.
  Network(std::vector<idx> sizes, std::vector<Act> acts, std::vector<double> alphas, LossKind loss,
          double loss_scale, std::vector<EmbeddingSpec> embeddings = {}, idx n_inputs = 0,
          idx ensemble = 1);

  idx n_inputs() const { return n_inputs_; }
  const std::vector<EmbeddingSpec>& embeddings() const { return emb_; }
  idx embedding_offset(idx e) const { return emb_off_[std::size_t(e)]; }
  idx ensemble() const { return k_; }
  idx adapter_offset() const { return ens_off_; }  // the (k, sizes[0]) adapters
  idx n_layers() const { return idx(acts_.size()); }
  idx n_params() const { return idx(params_.size()); }
  const std::vector<idx>& sizes() const { return sizes_; }
  T* params() { return params_.data(); }
  idx weight_offset(idx l) const { return w_off_[l]; }
  idx bias_offset(idx l) const { return b_off_[l]; }

  void set_optimizer(const OptimizerConfig& cfg);
  void reset_optimizer_state();
  // Flat optimizer buffers: [velocity] for momentum SGD, [m, v] for Adam, [] for plain SGD.
  std::vector<std::vector<T>*> optimizer_buffers();
  std::int64_t step() const { return step_; }
  void set_step(std::int64_t s) { step_ = s; }
  void set_l2(double alpha, bool per_sample) { l2_ = alpha; l2_per_sample_ = per_sample; }
  void set_seed(std::uint64_t seed) { rng_ = seed; drop_seed_ = seed; }
  void set_threads(int n) { n_threads_ = n; }
  // Dropout rate of each layer's output (the last must be 0), in [0, 1).
  void set_dropout(std::vector<double> rates);
  const std::vector<double>& dropout() const { return dropout_; }
  std::uint64_t dropout_seed() const { return drop_seed_; }
  // A schedule for slot (its step 0 is the network's current step).
  void set_schedule(SchedSlot slot, Schedule s);
  const Schedule& schedule(SchedSlot slot) const { return sched_[int(slot)]; }
  // Targets y become y (1 - ls) + ls / K (K = outputs; 2 for binary cross-entropy).
  void set_label_smoothing(double ls);
  double label_smoothing() const { return label_smoothing_; }
  // Threads that ran the last batches of the last train_epoch (0 before the first): what auto
  // mode chose, read by the tests.
  int last_threads() const { return last_threads_; }

  // What another backend (csrc/cuda) needs to run this network the same way.
  const std::vector<Act>& acts() const { return acts_; }
  const std::vector<T>& alphas() const { return alphas_; }
  LossKind loss() const { return loss_; }
  double loss_scale() const { return loss_scale_; }
  const OptimizerConfig& optimizer() const { return opt_; }
  double l2() const { return l2_; }
  bool l2_per_sample() const { return l2_per_sample_; }
  std::uint64_t& rng_state() { return rng_; }

  // x: (n, in)  y: (n, out)  sw: (n) or null.  order: (n) a permutation of 0..n-1 to visit the
  // rows in, or null for the network's own (shuffled or not).
  EpochResult train_epoch(const T* x, const T* y, const T* sw, idx n, idx batch_size, bool shuffle,
                          double lr, const std::function<bool()>& interrupted,
                          const std::int64_t* order = nullptr);
  // out: (n, out) output activations.
  void predict(T* out, const T* x, idx n);
  // Loss over all rows as one batch (L2 included); the gradient into grad (n_params) if non-null.
  // training: with the dropout masks of the next step (fixed while the step stays), else none.
  double loss_and_grad(const T* x, const T* y, const T* sw, idx n, T* grad, bool training = false);

 private:
  struct Work {  // one thread's scratch, sized for cap rows
    idx cap = 0;
    std::vector<std::vector<T>> z, a;  // per layer (z only where needed)
    std::vector<T> d0, d1, y, w;
    std::vector<T> x0, dx0;                      // embedded first-layer input and its gradient
    std::vector<T> xe, dxe;                      // ensemble: the members' inputs and gradient
    std::vector<std::vector<std::uint32_t>> keys;  // per layer: dropout keys of the chunk's rows
    std::vector<DropMask<T>> masks;                // per layer: this step's mask (keys null: none)
    std::vector<idx> rows;
  };
  int threads_for(int shards) const;
  // n_threads > 0: that many (at most one per shard); 0: auto mode.
  int choose_threads(int shards, AutoThreads& auto_threads) const;
  void ensure_work(int nt, idx cap, int shards);
  // Rows per chunk for shards of up to shard_rows rows (see chunk_rows in network.cpp).
  idx chunk_for(idx shard_rows) const;
  // Forward and backward for rows idx[0:count] of (x, y, sw), `chunk` rows at a time (w.cap >= chunk);
  // the gradient goes to grad (n_params). coef = loss_scale / batch weight sum. Returns the
  // unscaled weighted loss sum of these rows.
  double accumulate(Work& w, T* grad, const T* x, const T* y, const T* sw, const idx* rows, idx count,
                    idx chunk, T coef, bool training);
  // x0 (count, sizes[0]) = the first layer's input for rows[0:count] of x (embeddings looked up).
  void embed_rows(T* x0, const T* x, const idx* rows, idx count) const;
  // out (cnt, out) for cnt rows of x through every layer (embeddings, ensemble members and
  // their mean included); see network.cpp for the buffers.
  void forward_rows(T* out, const T* x, idx cnt, T* b0, T* b1, T* b2,
                    const std::vector<std::vector<T>>* packed) const;
  // Every embedded column of x (n rows) holds an integer code in range.
  void check_codes(const T* x, idx n) const;
  // Layer l's dropout at the current step, or rate 0 (no mask).
  double dropout_rate(idx l) const;
  std::pair<idx, idx> block(int b) const;
  double step_lr(double lr) const;
  // Sums the shards' gradients over block b (unless summed) and updates it; see network.cpp.
  double reduce_and_step(int b, const int* ids, int n_ids, double lr, double l2_eff, bool update,
                         T* grad_out, bool* finite, bool summed = false, double gscale = 1.0,
                         double decay = 0.0);

  std::vector<idx> sizes_;
  std::vector<Act> acts_;
  std::vector<T> alphas_;
  LossKind loss_;
  double loss_scale_;
  std::vector<idx> w_off_, b_off_;
  std::vector<T> params_;
  OptimizerConfig opt_;
  std::vector<T> opt_m_, opt_v_;
  std::int64_t step_ = 0;
  double l2_ = 0.0;
  bool l2_per_sample_ = false;
  std::uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  std::uint64_t drop_seed_ = 0x9E3779B97F4A7C15ull;
  int n_threads_ = 0;
  idx n_inputs_ = 0;
  std::vector<EmbeddingSpec> emb_;
  std::vector<idx> emb_off_, emb_pos_, numeric_cols_;  // table offsets, input positions, other columns
  idx k_ = 1, ens_off_ = 0;  // ensemble members; where the adapters start (n_params when k = 1)
  std::vector<double> dropout_;
  Schedule sched_[kNumSchedSlots];
  double label_smoothing_ = 0.0;
  int last_threads_ = 0;
  std::vector<Work> work_;
  std::vector<std::vector<T>> shard_grad_;  // one gradient buffer per shard of a batch
  // Each layer's weights packed once per batch for all shards: W for the forward GEMM, W^T for
  // the backward one (empty where the layer is too narrow for packing to be used).
  std::vector<std::vector<T>> packed_fwd_, packed_bwd_;
  AutoThreads train_auto_, grad_auto_;      // auto thread counts of train_epoch and loss_and_grad
  std::vector<idx> perm_;
};

extern template class Network<float>;
extern template class Network<double>;

int max_threads();

// perm[0:n] = the order in which one epoch visits the rows: 0..n-1, Fisher-Yates shuffled with
// the generator state rng when shuffle is set. Every backend uses it, so that the same seed gives
// the same batches on the CPU and on the GPU.
void epoch_order(idx* perm, idx n, bool shuffle, std::uint64_t& rng);

}  // namespace mlp
