// Per-step schedules of the learning rate, the weight decay and the dropout rate, written once
// for every backend. A schedule gives a factor for the step being taken (0-based, counted from
// the fit's first step); the network multiplies the base value by it. Python's mlp/schedules.py
// computes the same factors in float64 (tests/test_schedules.py compares the two).
#pragma once
#include <cmath>
#include <cstdint>

#include "common.hpp"

namespace mlp {

enum class SchedKind : int {
  Constant = 0,      // 1
  LinearWarmup = 1,  // min(1, (step + 1) / warmup)
  Cosine = 2,        // linear warmup, then floor + (1 - floor) * (1 + cos(pi t)) / 2, t = (step - warmup) / (total - warmup)
  FlatCosine = 3,    // 1 for the first floor(flat * total) steps, then the cosine over the rest
  CosLog4 = 4,       // 0.5 * (1 - cos(2 pi log2(1 + 15 t))), t = step / total (RealMLP's schedule)
};
constexpr int kNumSchedKinds = 5;

struct Schedule {
  SchedKind kind = SchedKind::Constant;
  double warmup = 0.0;  // steps of linear warmup (LinearWarmup, Cosine)
  double total = 1.0;   // steps the schedule spans (Cosine, FlatCosine, CosLog4); >= 1
  double floor = 0.0;   // the factor the cosine ends at (Cosine, FlatCosine)
  double flat = 0.0;    // fraction of total held at 1 (FlatCosine)
  std::int64_t origin = 0;  // the network step that is this schedule's step 0
};

inline bool schedule_valid(const Schedule& s) {
  const int k = int(s.kind);
  return k >= 0 && k < kNumSchedKinds && std::isfinite(s.warmup) && s.warmup >= 0 &&
         std::isfinite(s.total) && s.total >= 1 && std::isfinite(s.floor) && s.floor >= 0 &&
         s.floor <= 1 && std::isfinite(s.flat) && s.flat >= 0 && s.flat <= 1 && s.origin >= 0;
}

// The cosine from 1 at t = 0 to floor at t = 1 (t clamped to [0, 1]).
MLP_HOST_DEVICE inline double cosine_factor(double t, double floor) {
  const double pi = 3.14159265358979323846;
  t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
  return floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(pi * t));
}

// The factor of network step `step` (the step about to be taken).
MLP_HOST_DEVICE inline double schedule_factor(const Schedule& s, std::int64_t step) {
  const double k = double(step - s.origin < 0 ? 0 : step - s.origin);
  switch (s.kind) {
    case SchedKind::LinearWarmup:
      return s.warmup > 0.0 && k + 1.0 < s.warmup ? (k + 1.0) / s.warmup : 1.0;
    case SchedKind::Cosine: {
      if (s.warmup > 0.0 && k + 1.0 < s.warmup) return (k + 1.0) / s.warmup;
      const double span = s.total - s.warmup;
      return cosine_factor(span > 0.0 ? (k - s.warmup) / span : 1.0, s.floor);
    }
    case SchedKind::FlatCosine: {
      const double start = std::floor(s.flat * s.total);
      if (k < start) return 1.0;
      const double span = s.total - start;
      return cosine_factor(span > 0.0 ? (k - start) / span : 1.0, s.floor);
    }
    case SchedKind::CosLog4: {
      const double pi = 3.14159265358979323846;
      double t = k / s.total;
      t = t > 1.0 ? 1.0 : t;
      return 0.5 * (1.0 - std::cos(2.0 * pi * std::log2(1.0 + 15.0 * t)));
    }
    default:
      return 1.0;
  }
}

}  // namespace mlp
