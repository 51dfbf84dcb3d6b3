// The register-blocked product zoo's CPU kernels share (zoo.native): B packed once into
// column panels, then C = A @ B (or A^T @ B) a block of rows by a panel at a time.

#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"

namespace zoo_native {

// Products that multiply by the same matrix many times (an RNN's recurrent weights every
// step, a Winograd plane for every chunk of tiles) pack it once per call into column
// panels: a BLAS call repacks its operands every time (18% of the LSTM's run when sgemm
// did its per-step products). A register-blocked kernel then takes kMr rows by kNr = 2
// vectors of columns, accumulated over K: kMr * 2 accumulators, 2 panel vectors and a
// broadcast fit the vector registers, 32 with AVX-512, 16 with AVX2 or NEON.
#if defined(__AVX512F__)
constexpr int kMr = 8;
#else
constexpr int kMr = 6;
#endif
constexpr int kNr = 2 * kLanes;

inline int64_t packed_size(int64_t K, int64_t N) { return (N + kNr - 1) / kNr * kNr * K; }

// B (K, N), read as b[k * ldb + n], or as b[n * ldb + k] when `transposed`, into panels:
// out[(panel * K + k) * kNr + col] = B[k][panel * kNr + col], zero past N. With
// `column_sums`, each column's sum over the K rows is added to column_sums[n].
inline void pack_panels(const float* b, int64_t ldb, bool transposed, int64_t K, int64_t N, float* out,
                        float* column_sums = nullptr) {
  // Row by row when B's rows are contiguous: B is read in order, not a page per row.
  for (int64_t k = 0; k < K && !transposed; ++k)
    for (int64_t n0 = 0; n0 < N; n0 += kNr) {
      const int64_t cols = std::min<int64_t>(kNr, N - n0);
      float* row = out + n0 * K + k * kNr;
      std::memcpy(row, b + k * ldb + n0, sizeof(float) * cols);
      std::fill(row + cols, row + kNr, 0.0f);
    }
  for (int64_t n0 = 0; n0 < N; n0 += kNr) {
    const int64_t cols = std::min<int64_t>(kNr, N - n0);
    float* panel = out + n0 * K;
    if (transposed)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t col = 0; col < kNr; ++col) panel[k * kNr + col] = col < cols ? b[(n0 + col) * ldb + k] : 0.0f;
    if (column_sums == nullptr) continue;
    float sums[kNr] = {};
    for (int64_t k = 0; k < K; ++k)
      for (int col = 0; col < kNr; ++col) sums[col] += panel[k * kNr + col];
    for (int64_t col = 0; col < cols; ++col) column_sums[n0 + col] += sums[col];
  }
}

// A is read as a[r * lda + k], or as a[k * lda + r] when `TransposedA`: the weight
// gradients' A^T, whose Rows broadcasts of one k then come from one cache line.
template <int Rows, bool TransposedA>
inline void packed_block(const float* a, int64_t lda, const float* panel, int64_t K, float* c, int64_t ldc,
                         int64_t cols, bool accumulate) {
  Vec acc[Rows][2] = {};
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    Vec b0, b1;
    std::memcpy(&b0, panel + k * kNr, sizeof b0);
    std::memcpy(&b1, panel + k * kNr + kLanes, sizeof b1);
    for (int r = 0; r < Rows; ++r) {
      const float ar = TransposedA ? a[k * lda + r] : a[r * lda + k];
      acc[r][0] += ar * b0;
      acc[r][1] += ar * b1;
    }
  }
  for (int r = 0; r < Rows; ++r) {
    float out[kNr];
    std::memcpy(out, &acc[r][0], sizeof acc[r][0]);
    std::memcpy(out + kLanes, &acc[r][1], sizeof acc[r][1]);
    float* row = c + r * ldc;
    if (accumulate)
      for (int64_t col = 0; col < cols; ++col) row[col] += out[col];
    else
      std::memcpy(row, out, sizeof(float) * cols);
  }
}

// C (M, N) = (or +=, with `accumulate`) A (M, K) @ B, B packed by pack_panels; A^T
// (A given as (K, M)) when `TransposedA`.
template <bool TransposedA = false>
inline void packed_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* packed,
                        float* c, int64_t ldc, bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += kNr) {
    const int64_t cols = std::min<int64_t>(kNr, N - n0);
    const float* panel = packed + n0 * K;
    for (int64_t m0 = 0; m0 < M; m0 += kMr) {
      const float* a0 = TransposedA ? a + m0 : a + m0 * lda;
      float* c0 = c + m0 * ldc + n0;
      switch (std::min<int64_t>(kMr, M - m0)) {
        case 8: packed_block<8, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 7: packed_block<7, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 6: packed_block<6, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 5: packed_block<5, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 4: packed_block<4, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 3: packed_block<3, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 2: packed_block<2, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        default: packed_block<1, TransposedA>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
      }
    }
  }
}

}  // namespace zoo_native
