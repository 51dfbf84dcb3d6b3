// zoo's CPU kernels as XLA FFI handlers (zoo.native): the plain LSTM over a whole
// sequence, forward and backward, with the equations and gate order (i, f, a, o) of
// zoo.nn.recurrence.lstm_step and kernel (I+H, 4H) = [W; U], row-major; and a matmul.
//
// Why kernels of our own: XLA:CPU runs a scan as a loop whose every step dispatches the
// step's product, its elementwise kernels and the slices that stack its outputs one by
// one, each product repacking the same recurrent weights. Here a whole sequence is one
// call: the products over all steps are sgemm calls of the BLAS that zoo.native hands over
// at load (OpenBLAS, scipy-openblas32), the per-step products run on weights packed once
// per call, the gate math is one vectorised pass per step, and the worker threads meet
// once per step.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common.h"

namespace {

using namespace zoo_native;

// Threads. The hidden units of an LSTM or GRU are independent within a step, so each
// worker owns a slice of them for the whole sequence: the product for its gate columns,
// then the gate math for its units. The only meeting point is once per step, when every
// worker's part of h (or, going back, of the gate gradients) is needed by all.

// exp for the gate nonlinearities: written without calls or branches so that the
// compiler vectorises the loops that use it. Cody-Waite range reduction and Cephes'
// polynomial, relative error below 2e-7; NaN stays NaN.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_approx(float x) { return 2.0f / (1.0f + exp_approx(-2.0f * x)) - 1.0f; }

// The per-step products of the recurrence multiply by the same recurrent weights T times.
// A BLAS call repacks its operands every time (18% of the whole run when sgemm did these
// products), so they use the weights packed once per call into column panels, and a
// register-blocked kernel: kMr rows by kNr = 2 vectors of columns, accumulated over K.
// kMr * 2 accumulators, 2 panel vectors and a broadcast fit the vector registers: 32 with
// AVX-512, 16 with AVX2 or NEON.
#if defined(__AVX512F__)
constexpr int kMr = 8;
#else
constexpr int kMr = 6;
#endif
constexpr int kNr = 2 * kLanes;

int64_t packed_size(int64_t K, int64_t N) { return (N + kNr - 1) / kNr * kNr * K; }

// B (K, N), read as b[k * ldb + n], or as b[n * ldb + k] when `transposed`, into panels:
// out[(panel * K + k) * kNr + col] = B[k][panel * kNr + col], zero past N.
void pack_panels(const float* b, int64_t ldb, bool transposed, int64_t K, int64_t N, float* out) {
  for (int64_t n0 = 0; n0 < N; n0 += kNr) {
    const int64_t cols = std::min<int64_t>(kNr, N - n0);
    float* panel = out + n0 * K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t col = 0; col < kNr; ++col)
        panel[k * kNr + col] =
            col < cols ? (transposed ? b[(n0 + col) * ldb + k] : b[k * ldb + n0 + col]) : 0.0f;
  }
}

template <int Rows>
void packed_block(const float* a, int64_t lda, const float* panel, int64_t K, float* c, int64_t ldc, int64_t cols,
                  bool accumulate) {
  Vec acc[Rows][2] = {};
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    Vec b0, b1;
    std::memcpy(&b0, panel + k * kNr, sizeof b0);
    std::memcpy(&b1, panel + k * kNr + kLanes, sizeof b1);
    for (int r = 0; r < Rows; ++r) {
      const float ar = a[r * lda + k];
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

// C (M, N) = (or +=, with `accumulate`) A (M, K) @ B, B packed by pack_panels.
void packed_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* packed, float* c,
                 int64_t ldc, bool accumulate) {
  for (int64_t n0 = 0; n0 < N; n0 += kNr) {
    const int64_t cols = std::min<int64_t>(kNr, N - n0);
    const float* panel = packed + n0 * K;
    for (int64_t m0 = 0; m0 < M; m0 += kMr) {
      const float* a0 = a + m0 * lda;
      float* c0 = c + m0 * ldc + n0;
      switch (std::min<int64_t>(kMr, M - m0)) {
        case 8: packed_block<8>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 7: packed_block<7>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 6: packed_block<6>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 5: packed_block<5>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 4: packed_block<4>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 3: packed_block<3>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        case 2: packed_block<2>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
        default: packed_block<1>(a0, lda, panel, K, c0, ldc, cols, accumulate); break;
      }
    }
  }
}

ffi::Error check_shapes(int64_t T, int64_t B, int64_t I, int64_t H, const ffi::Buffer<ffi::F32>& kernel,
                        const ffi::Buffer<ffi::F32>& bias) {
  if (auto e = sgemm_ready(); e.failure()) return e;
  auto k = kernel.dimensions();
  if (k.size() != 2 || k[0] != I + H || k[1] != 4 * H || bias.element_count() != static_cast<size_t>(4 * H))
    return ffi::Error::InvalidArgument("zoo lstm: kernel must be (I+H, 4H) and bias (4H,)");
  if (T < 1 || B < 1) return ffi::Error::InvalidArgument("zoo lstm: empty sequence or batch");
  return ffi::Error::Success();
}

// xs (T, B, I), kernel (I+H, 4H), bias (4H), c0, h0 (B, H) ->
// hs, cs (T+1, B, H): the states h_0..h_T and c_0..c_T; acts (T, B, 4H): i, f, a, o after
// their nonlinearities.
ffi::Error LstmForwardImpl(ffi::Buffer<ffi::F32> xs, ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                           ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> h0, ffi::ResultBuffer<ffi::F32> hs,
                           ffi::ResultBuffer<ffi::F32> cs, ffi::ResultBuffer<ffi::F32> acts) {
  auto d = xs.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("zoo lstm: xs must be (T, B, I)");
  const int64_t T = d[0], B = d[1], I = d[2], H = h0.dimensions().back();
  if (auto e = check_shapes(T, B, I, H, kernel, bias); e.failure()) return e;
  const int64_t G = 4 * H;
  const float* w = kernel.typed_data();
  const float* b = bias.typed_data();
  const float* x = xs.typed_data();
  float* h = hs->typed_data();
  float* c = cs->typed_data();
  float* act = acts->typed_data();
  std::memcpy(h, h0.typed_data(), sizeof(float) * B * H);
  std::memcpy(c, c0.typed_data(), sizeof(float) * B * H);
  const int workers = worker_count(H, 32);
  Barrier barrier(workers);
  WorkspaceLease workspace;
  for (int p = 0; p < workers; ++p) {  // sized here: resizing is not thread-safe
    auto [j0, j1] = share(H, p, workers);
    workspace.worker(p, (I + H + T * B) * 4 * (j1 - j0) + packed_size(H, 4 * (j1 - j0)));
  }
  run_workers(workers, [&](int p) {
    // This worker's units j0..j1: its columns of [W; U] and of the gates, gathered as
    // (i, f, a, o) blocks of width Hp, and the input projection for all steps.
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0, Gp = 4 * Hp;
    float* wp = workspace.worker(p, 0);  // (I+H, Gp)
    float* gp = wp + (I + H) * Gp;       // (T*B, Gp)
    for (int64_t row = 0; row < I + H; ++row)
      for (int g = 0; g < 4; ++g) std::memcpy(wp + row * Gp + g * Hp, w + row * G + g * H + j0, sizeof(float) * Hp);
    for (int64_t row = 0; row < T * B; ++row)
      for (int g = 0; g < 4; ++g) std::memcpy(gp + row * Gp + g * Hp, b + g * H + j0, sizeof(float) * Hp);
    sgemm(kRowMajor, kNoTrans, kNoTrans, T * B, Gp, I, 1.0f, x, I, wp, Gp, 1.0f, gp, Gp);
    float* up = gp + T * B * Gp;  // U's columns, packed
    pack_panels(wp + I * Gp, Gp, false, H, Gp, up);
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) barrier.wait();  // h_t complete
      float* g_t = gp + t * B * Gp;
      packed_gemm(B, Gp, H, h + t * B * H, H, up, g_t, Gp, true);
      for (int64_t r = 0; r < B; ++r) {
        const float* gi = g_t + r * Gp;
        const float* gf = gi + Hp;
        const float* ga = gi + 2 * Hp;
        const float* go = gi + 3 * Hp;
        float* ai = act + (t * B + r) * G + j0;
        float* af = ai + H;
        float* aa = ai + 2 * H;
        float* ao = ai + 3 * H;
        const float* cp = c + (t * B + r) * H + j0;
        float* cn = c + ((t + 1) * B + r) * H + j0;
        float* hn = h + ((t + 1) * B + r) * H + j0;
#pragma GCC ivdep  // the gate blocks, c and h never overlap
        for (int64_t j = 0; j < Hp; ++j) {
          const float i = sigmoid(gi[j]), f = sigmoid(gf[j]), a = tanh_approx(ga[j]), o = sigmoid(go[j]);
          const float cj = a * i + f * cp[j];
          ai[j] = i, af[j] = f, aa[j] = a, ao[j] = o;
          cn[j] = cj;
          hn[j] = tanh_approx(cj) * o;
        }
      }
    }
  });
  return ffi::Error::Success();
}

// The forward's saved states and gates, the cotangents of the outputs (dys (T, B, H), or
// an empty array when only the final state was returned) and of the final state ->
// dkernel (I+H, 4H), dbias (4H), dgates (T, B, 4H): the gradients of the gates before
// their nonlinearities, dc0, dh0 (B, H). The inputs' gradient, dgates @ W^T, is left to
// the caller (a Matmul), so that XLA drops it where nothing asks for it.
ffi::Error LstmBackwardImpl(ffi::Buffer<ffi::F32> xs, ffi::Buffer<ffi::F32> kernel, ffi::Buffer<ffi::F32> bias,
                            ffi::Buffer<ffi::F32> hs, ffi::Buffer<ffi::F32> cs, ffi::Buffer<ffi::F32> acts,
                            ffi::Buffer<ffi::F32> dys, ffi::Buffer<ffi::F32> dcT, ffi::Buffer<ffi::F32> dhT,
                            ffi::ResultBuffer<ffi::F32> dkernel, ffi::ResultBuffer<ffi::F32> dbias,
                            ffi::ResultBuffer<ffi::F32> dgates, ffi::ResultBuffer<ffi::F32> dc0,
                            ffi::ResultBuffer<ffi::F32> dh0) {
  auto d = xs.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("zoo lstm: xs must be (T, B, I)");
  const int64_t T = d[0], B = d[1], I = d[2], H = dhT.dimensions().back();
  if (auto e = check_shapes(T, B, I, H, kernel, bias); e.failure()) return e;
  const int64_t G = 4 * H;
  const float* dy = dys.element_count() != 0 ? dys.typed_data() : nullptr;
  const float* w = kernel.typed_data();
  const float* u = w + I * G;
  const float* x = xs.typed_data();
  const float* c = cs.typed_data();
  const float* act = acts.typed_data();
  float* dk = dkernel->typed_data();
  float* db = dbias->typed_data();
  float* dc = dc0->typed_data();  // the running dc and dh, left at step 0's values
  float* dh = dh0->typed_data();
  std::memcpy(dc, dcT.typed_data(), sizeof(float) * B * H);
  std::memcpy(dh, dhT.typed_data(), sizeof(float) * B * H);
  const int workers = worker_count(H, 32);
  Barrier barrier(workers);
  float* dg = dgates->typed_data();
  WorkspaceLease workspace;
  for (int p = 0; p < workers; ++p) {
    auto [j0, j1] = share(H, p, workers);
    workspace.worker(p, packed_size(G, j1 - j0));
  }
  run_workers(workers, [&](int p) {
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0;
    float* ut = workspace.worker(p, 0);  // U[j0:j1]^T (4H, Hp), packed
    pack_panels(u + j0 * G, G, true, G, Hp, ut);
    for (int64_t t = T - 1; t >= 0; --t) {
      float* dg_t = dg + t * B * G;
      for (int64_t r = 0; r < B; ++r) {
        const float* a_r = act + (t * B + r) * G + j0;
        const float* cp = c + (t * B + r) * H + j0;
        const float* cn = c + ((t + 1) * B + r) * H + j0;
        float* dc_r = dc + r * H + j0;
        float* dh_r = dh + r * H + j0;
        float* dgr = dg_t + r * G + j0;
        if (dy != nullptr) {
          const float* dy_r = dy + (t * B + r) * H + j0;
          for (int64_t j = 0; j < Hp; ++j) dh_r[j] += dy_r[j];
        }
#pragma GCC ivdep
        for (int64_t j = 0; j < Hp; ++j) {
          const float i = a_r[j], f = a_r[H + j], a = a_r[2 * H + j], o = a_r[3 * H + j];
          const float tc = tanh_approx(cn[j]);
          const float dcj = dc_r[j] + dh_r[j] * o * (1.0f - tc * tc);
          dgr[j] = dcj * a * i * (1.0f - i);
          dgr[H + j] = dcj * cp[j] * f * (1.0f - f);
          dgr[2 * H + j] = dcj * i * (1.0f - a * a);
          dgr[3 * H + j] = dh_r[j] * tc * o * (1.0f - o);
          dc_r[j] = dcj * f;
        }
      }
      barrier.wait();  // dg_t complete
      // dh_{t-1}[:, j0:j1] = dg_t @ U[j0:j1]^T
      packed_gemm(B, Hp, G, dg_t, G, ut, dh + j0, H, false);
    }
    barrier.wait();  // every dg written: the weight gradients need all of it
    auto [k0, k1] = share(G, p, workers);
    const int64_t Gp = k1 - k0;
    sgemm(kRowMajor, kTrans, kNoTrans, I, Gp, T * B, 1.0f, x, I, dg + k0, G, 0.0f, dk + k0, G);
    sgemm(kRowMajor, kTrans, kNoTrans, H, Gp, T * B, 1.0f, hs.typed_data(), H, dg + k0, G, 0.0f, dk + I * G + k0,
          G);
    std::memset(db + k0, 0, sizeof(float) * Gp);
    for (int64_t row = 0; row < T * B; ++row) {
      const float* dgr = dg + row * G + k0;
      for (int64_t k = 0; k < Gp; ++k) db[k0 + k] += dgr[k];
    }
  });
  return ffi::Error::Success();
}

// The reset-after GRU (PyTorch's; zoo.nn.recurrence.gru_step(reset_after=True)): blocks
// (r, z, n), r = s(x W_r + b_r + h U_r), z likewise, q = h U_n + b_hn,
// n = tanh(x W_n + b_n + r q), h' = (1 - z) n + z h ("keep"), or (1 - z) h + z n ("take").
// Shared out among the workers by hidden units, as the LSTM.
ffi::Error check_gru(int64_t I, int64_t H, const ffi::Buffer<ffi::F32>& w_i, const ffi::Buffer<ffi::F32>& w_h) {
  if (auto e = sgemm_ready(); e.failure()) return e;
  auto di = w_i.dimensions(), dh = w_h.dimensions();
  if (di.size() != 2 || dh.size() != 2 || di[0] != I || di[1] != 3 * H || dh[0] != H || dh[1] != 3 * H)
    return ffi::Error::InvalidArgument("zoo gru: input_kernel must be (I, 3H) and recurrent_kernel (H, 3H)");
  return ffi::Error::Success();
}

// xs (T, B, I), w_i (I, 3H), w_h (H, 3H), b (3H), b_hn (H), h0 (B, H) -> hs (T+1, B, H),
// acts (T, B, 4H): r, z, n and q = h U_n + b_hn of every step.
ffi::Error GruForwardImpl(ffi::Buffer<ffi::F32> xs, ffi::Buffer<ffi::F32> w_i, ffi::Buffer<ffi::F32> w_h,
                          ffi::Buffer<ffi::F32> bias, ffi::Buffer<ffi::F32> b_hn, ffi::Buffer<ffi::F32> h0,
                          ffi::ResultBuffer<ffi::F32> hs, ffi::ResultBuffer<ffi::F32> acts, bool keep) {
  auto d = xs.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("zoo gru: xs must be (T, B, I)");
  const int64_t T = d[0], B = d[1], I = d[2], H = h0.dimensions().back();
  if (auto e = check_gru(I, H, w_i, w_h); e.failure()) return e;
  if (T < 1 || B < 1) return ffi::Error::InvalidArgument("zoo gru: empty sequence or batch");
  const int64_t G = 3 * H;
  float* h = hs->typed_data();
  float* act = acts->typed_data();
  std::memcpy(h, h0.typed_data(), sizeof(float) * B * H);
  const int workers = worker_count(H, 32);
  Barrier barrier(workers);
  WorkspaceLease workspace;
  for (int p = 0; p < workers; ++p) {
    auto [j0, j1] = share(H, p, workers);
    const int64_t Gp = 3 * (j1 - j0);
    workspace.worker(p, (I + H + T * B + B) * Gp + packed_size(H, Gp));
  }
  run_workers(workers, [&, keep](int p) {
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0, Gp = 3 * Hp;
    float* wp = workspace.worker(p, 0);  // [W; U] columns of units j0..j1, (I+H, Gp)
    float* gx = wp + (I + H) * Gp;      // x W + b for every step, (T*B, Gp)
    float* gh = gx + T * B * Gp;        // h U of the current step, (B, Gp)
    float* up = gh + B * Gp;            // U's columns, packed
    for (int g = 0; g < 3; ++g) {
      for (int64_t row = 0; row < I; ++row)
        std::memcpy(wp + row * Gp + g * Hp, w_i.typed_data() + row * G + g * H + j0, sizeof(float) * Hp);
      for (int64_t row = 0; row < H; ++row)
        std::memcpy(wp + (I + row) * Gp + g * Hp, w_h.typed_data() + row * G + g * H + j0, sizeof(float) * Hp);
      for (int64_t row = 0; row < T * B; ++row)
        std::memcpy(gx + row * Gp + g * Hp, bias.typed_data() + g * H + j0, sizeof(float) * Hp);
    }
    sgemm(kRowMajor, kNoTrans, kNoTrans, T * B, Gp, I, 1.0f, xs.typed_data(), I, wp, Gp, 1.0f, gx, Gp);
    pack_panels(wp + I * Gp, Gp, false, H, Gp, up);
    const float* bn = b_hn.typed_data() + j0;
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) barrier.wait();  // h_t complete
      packed_gemm(B, Gp, H, h + t * B * H, H, up, gh, Gp, false);
      for (int64_t r = 0; r < B; ++r) {
        const float *xr = gx + (t * B + r) * Gp, *xz = xr + Hp, *xn = xz + Hp;
        const float *hr = gh + r * Gp, *hz = hr + Hp, *hq = hz + Hp;
        const float* hp = h + (t * B + r) * H + j0;
        float* hn = h + ((t + 1) * B + r) * H + j0;
        float *ar = act + (t * B + r) * 4 * H + j0, *az = ar + H, *an = az + H, *aq = an + H;
        const float z_keeps = keep ? 1.0f : 0.0f;  // h' = (1 - w) n + w h with w = z or 1 - z
#pragma GCC ivdep
        for (int64_t j = 0; j < Hp; ++j) {
          const float rj = sigmoid(xr[j] + hr[j]), zj = sigmoid(xz[j] + hz[j]);
          const float qj = hq[j] + bn[j];
          const float nj = tanh_approx(xn[j] + rj * qj);
          ar[j] = rj, az[j] = zj, an[j] = nj, aq[j] = qj;
          const float wj = z_keeps * zj + (1.0f - z_keeps) * (1.0f - zj);
          hn[j] = (1.0f - wj) * nj + wj * hp[j];
        }
      }
    }
  });
  return ffi::Error::Success();
}

// The forward's states and gates, the cotangents of the outputs (dys, or empty) and of the
// final state -> dw_i (I, 3H), dw_h (H, 3H), db (3H), db_hn (H), dgx (T, B, 3H): the
// gradients of x W + b (the inputs' gradient is dgx W^T, a separate call), dh0 (B, H).
ffi::Error GruBackwardImpl(ffi::Buffer<ffi::F32> xs, ffi::Buffer<ffi::F32> w_i, ffi::Buffer<ffi::F32> w_h,
                           ffi::Buffer<ffi::F32> hs, ffi::Buffer<ffi::F32> acts, ffi::Buffer<ffi::F32> dys,
                           ffi::Buffer<ffi::F32> dhT, ffi::ResultBuffer<ffi::F32> dw_i,
                           ffi::ResultBuffer<ffi::F32> dw_h, ffi::ResultBuffer<ffi::F32> dbias,
                           ffi::ResultBuffer<ffi::F32> db_hn, ffi::ResultBuffer<ffi::F32> dgates,
                           ffi::ResultBuffer<ffi::F32> dh0, bool keep) {
  auto d = xs.dimensions();
  if (d.size() != 3) return ffi::Error::InvalidArgument("zoo gru: xs must be (T, B, I)");
  const int64_t T = d[0], B = d[1], I = d[2], H = dhT.dimensions().back();
  if (auto e = check_gru(I, H, w_i, w_h); e.failure()) return e;
  const int64_t G = 3 * H;
  const float* dy = dys.element_count() != 0 ? dys.typed_data() : nullptr;
  const float* u = w_h.typed_data();
  const float* h = hs.typed_data();
  const float* act = acts.typed_data();
  float* dgx = dgates->typed_data();
  float* dh = dh0->typed_data();  // the running dh, left at step 0's value
  std::memcpy(dh, dhT.typed_data(), sizeof(float) * B * H);
  const int workers = worker_count(H, 32);
  Barrier barrier(workers);
  WorkspaceLease workspace;
  for (int p = 0; p < workers; ++p) {
    auto [j0, j1] = share(H, p, workers);
    workspace.worker(p, packed_size(G, j1 - j0) + (p == 0 ? T * B * G : 0));
  }
  float* dgh = workspace.worker(0, 0) + packed_size(G, share(H, 0, workers).second);  // (T, B, 3H)
  run_workers(workers, [&, keep](int p) {
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0;
    float* ut = workspace.worker(p, 0);  // U[j0:j1]^T (3H, Hp), packed
    pack_panels(u + j0 * G, G, true, G, Hp, ut);
    for (int64_t t = T - 1; t >= 0; --t) {
      for (int64_t r = 0; r < B; ++r) {
        const float *ar = act + (t * B + r) * 4 * H + j0, *az = ar + H, *an = az + H, *aq = an + H;
        const float* hp = h + (t * B + r) * H + j0;
        float* dh_r = dh + r * H + j0;
        float *gxr = dgx + (t * B + r) * G + j0, *gxz = gxr + H, *gxn = gxz + H;
        float *ghr = dgh + (t * B + r) * G + j0, *ghz = ghr + H, *ghn = ghz + H;
        if (dy != nullptr) {
          const float* dy_r = dy + (t * B + r) * H + j0;
          for (int64_t j = 0; j < Hp; ++j) dh_r[j] += dy_r[j];
        }
        const float z_keeps = keep ? 1.0f : 0.0f;  // h' = (1 - w) n + w h with w = z or 1 - z
        const float dw_dz = 2.0f * z_keeps - 1.0f;
#pragma GCC ivdep
        for (int64_t j = 0; j < Hp; ++j) {
          const float rj = ar[j], zj = az[j], nj = an[j], qj = aq[j], dhj = dh_r[j];
          const float wj = z_keeps * zj + (1.0f - z_keeps) * (1.0f - zj);
          const float dp = dhj * (1.0f - wj) * (1.0f - nj * nj);
          const float dsz = dw_dz * dhj * (hp[j] - nj) * zj * (1.0f - zj);
          const float dsr = dp * qj * rj * (1.0f - rj);
          gxr[j] = ghr[j] = dsr;
          gxz[j] = ghz[j] = dsz;
          gxn[j] = dp;
          ghn[j] = dp * rj;
          dh_r[j] = dhj * wj;  // the direct path; dgh U^T is added below
        }
      }
      barrier.wait();  // dgh_t complete
      packed_gemm(B, Hp, G, dgh + t * B * G, G, ut, dh + j0, H, true);
    }
    barrier.wait();  // every gate gradient written
    auto [k0, k1] = share(G, p, workers);
    const int64_t Gp = k1 - k0;
    sgemm(kRowMajor, kTrans, kNoTrans, I, Gp, T * B, 1.0f, xs.typed_data(), I, dgx + k0, G, 0.0f,
          dw_i->typed_data() + k0, G);
    sgemm(kRowMajor, kTrans, kNoTrans, H, Gp, T * B, 1.0f, h, H, dgh + k0, G, 0.0f, dw_h->typed_data() + k0, G);
    float* db = dbias->typed_data();
    std::memset(db + k0, 0, sizeof(float) * Gp);
    for (int64_t row = 0; row < T * B; ++row)
      for (int64_t k = k0; k < k1; ++k) db[k] += dgx[row * G + k];
    auto [n0, n1] = share(H, p, workers);  // db_hn = the sum of dq, the n block of dgh
    float* dbn = db_hn->typed_data();
    std::memset(dbn + n0, 0, sizeof(float) * (n1 - n0));
    for (int64_t row = 0; row < T * B; ++row)
      for (int64_t j = n0; j < n1; ++j) dbn[j] += dgh[row * G + 2 * H + j];
  });
  return ffi::Error::Success();
}

// op(a) @ op(b), op transposing where asked: a (M, K) or (K, M), b (K, N) or (N, K) ->
// (M, N). The workers share the longer side of the output.
ffi::Error MatmulImpl(ffi::Buffer<ffi::F32> a, ffi::Buffer<ffi::F32> b, ffi::ResultBuffer<ffi::F32> out,
                      bool transpose_a, bool transpose_b) {
  if (auto e = sgemm_ready(); e.failure()) return e;
  auto da = a.dimensions(), db = b.dimensions();
  if (da.size() != 2 || db.size() != 2) return ffi::Error::InvalidArgument("zoo matmul: operands must be matrices");
  const int64_t M = transpose_a ? da[1] : da[0], K = transpose_a ? da[0] : da[1];
  const int64_t N = transpose_b ? db[0] : db[1];
  if ((transpose_b ? db[1] : db[0]) != K) return ffi::Error::InvalidArgument("zoo matmul: inner sizes differ");
  const int ta = transpose_a ? kTrans : kNoTrans, tb = transpose_b ? kTrans : kNoTrans;
  const int64_t lda = da[1], ldb = db[1];
  const float* pa = a.typed_data();
  const float* pb = b.typed_data();
  float* pc = out->typed_data();
  const bool by_rows = M >= N;
  const int workers = worker_count(by_rows ? M : N, 64);
  run_workers(workers, [&](int p) {
    auto [i0, i1] = share(by_rows ? M : N, p, workers);
    if (i1 == i0) return;
    if (by_rows)  // rows i0..i1 of op(a) and of the output
      sgemm(kRowMajor, ta, tb, i1 - i0, N, K, 1.0f, pa + (transpose_a ? i0 : i0 * lda), lda, pb, ldb, 0.0f,
            pc + i0 * N, N);
    else  // columns i0..i1 of op(b) and of the output
      sgemm(kRowMajor, ta, tb, M, i1 - i0, K, 1.0f, pa, lda, pb + (transpose_b ? i0 * ldb : i0), ldb, 0.0f, pc + i0,
            N);
  });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooLstmForward, LstmForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // cs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // acts
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooLstmBackward, LstmBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // hs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // cs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // acts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dys, or empty
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dcT
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dhT
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dkernel
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dbias
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dgates
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dc0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dh0
);

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooGruForward, GruForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // input_kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent_kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent_bias
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // acts
                                  .Attr<bool>("keep"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooGruBackward, GruBackwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // input_kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // recurrent_kernel
                                  .Arg<ffi::Buffer<ffi::F32>>()  // hs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // acts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dys, or empty
                                  .Arg<ffi::Buffer<ffi::F32>>()  // dhT
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_i
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dw_h
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dbias
                                  .Ret<ffi::Buffer<ffi::F32>>()  // db_hn
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dgates (of x W + b)
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dh0
                                  .Attr<bool>("keep"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooMatmul, MatmulImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<bool>("transpose_a")
                                  .Attr<bool>("transpose_b"));

extern "C" void zoo_native_set_sgemm(void* fn) { sgemm = reinterpret_cast<Sgemm>(fn); }
