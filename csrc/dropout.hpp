// Dropout masks from a counter-based generator: whether unit u of data row r is kept at training
// step s of layer l is a hash of (seed, s, l, r, u), so the same seed gives the same masks
// whatever the thread count, the shard a row falls in, or the backend. Kept units are scaled by
// 1 / (1 - rate) (inverted dropout), so nothing changes at predict time.
// tests/reference.py computes the same bits with numpy.
#pragma once
#include <cstdint>

#include "common.hpp"

namespace mlp {

// splitmix64's finalizer (Steele, Lea & Flood 2014).
MLP_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One 32-bit key per (seed, step, layer, row); dropout_bits spreads it over the row's units.
MLP_HOST_DEVICE inline std::uint32_t dropout_row_key(std::uint64_t seed, std::int64_t step, std::int64_t layer,
                                                     std::int64_t row) {
  std::uint64_t k = mix64(seed + 0x9E3779B97F4A7C15ull * (std::uint64_t(step) + 1));
  k = mix64(k + 0xC2B2AE3D27D4EB4Full * (std::uint64_t(layer) + 1));
  k = mix64(k + 0xD1B54A32D192ED03ull * (std::uint64_t(row) + 1));
  return std::uint32_t(k >> 32);
}

// murmur3's 32-bit finalizer over key + unit * golden ratio: 32-bit multiplies only, so the
// epilogue loops that call it vectorize.
MLP_HOST_DEVICE inline std::uint32_t dropout_bits(std::uint32_t key, std::uint32_t unit) {
  std::uint32_t h = key + unit * 0x9E3779B9u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// A unit is dropped when its bits fall below the threshold: rate * 2^32, rounded down.
inline std::uint32_t dropout_threshold(double rate) {
  const double t = rate * 4294967296.0;
  return t <= 0.0 ? 0u : (t >= 4294967295.0 ? 4294967295u : std::uint32_t(t));
}

// What a layer's forward write-out and its backward read need: per-row keys of the rows being
// processed (keys[i] for row i of the block), the threshold and the kept units' scale.
template <class T>
struct DropMask {
  const std::uint32_t* keys = nullptr;
  std::uint32_t threshold = 0;
  T scale = T(1);
};

}  // namespace mlp
