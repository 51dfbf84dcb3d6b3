// zoo's CPU kernels as XLA FFI handlers (zoo.native): the plain LSTM over a whole
// sequence, forward and backward, with the equations and gate order (i, f, a, o) of
// zoo.nn.recurrence.lstm_step and kernel (I+H, 4H) = [W; U], row-major; and a matmul.
//
// Why kernels of our own: XLA:CPU runs a scan as a loop whose every step dispatches the
// step's product, its elementwise kernels and the slices that stack its outputs one by
// one, each product repacking the same recurrent weights. Here a whole sequence is one
// call: each step's product runs on weights packed once per call (the LSTM's takes the
// step's input and state at once), the gate math is one vectorised pass per step, the
// worker threads meet once per step, and the weight gradients are one chunked product
// over all steps on the same kernel. OpenBLAS (scipy-openblas32, handed over at load)
// does the matmul.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "common.h"
#include "gemm.h"

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

// The weight gradients of a product over all steps: for each (A (K, M_i), C_i (M_i, ...)),
// C_i = A^T B, with B (K, ...) the gates' gradients, and column_sums = the sum of B's rows
// (the bias gradient). B's columns are `blocks` blocks of N, block_stride apart, as are
// C_i's and the sums' (a worker's units in each gate). B is packed a chunk of rows at a
// time, each chunk used by every A and block while it sits in L2, and the products run
// on the kernel above: OpenBLAS's sgemm took 20% longer per FLOP on the LSTM benchmark's
// (8192 x 320)^T (8192 x 1024), copying A^T as well.
struct TransposedFactor {
  const float* a;
  int64_t lda, M;
  float* c;
};
constexpr int64_t kWeightGradChunk = 256;  // rows of B: a 32 KB panel, N / kNr of them

int64_t weight_gradient_workspace(int64_t N) { return packed_size(kWeightGradChunk, N); }

void weight_gradients(std::initializer_list<TransposedFactor> factors, const float* b, int64_t ldb, int64_t K,
                      int64_t N, int blocks, int64_t block_stride, int64_t ldc, float* column_sums,
                      float* workspace) {
  for (int g = 0; g < blocks; ++g) std::fill_n(column_sums + g * block_stride, N, 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += kWeightGradChunk) {
    const int64_t rows = std::min(kWeightGradChunk, K - k0);
    for (int g = 0; g < blocks; ++g) {
      const int64_t col = g * block_stride;
      pack_panels(b + k0 * ldb + col, ldb, false, rows, N, workspace, column_sums + col);
      for (const TransposedFactor& f : factors)
        packed_gemm<true>(f.M, N, rows, f.a + k0 * f.lda, f.lda, workspace, f.c + col, ldc, k0 > 0);
    }
  }
}

ffi::Error check_shapes(int64_t T, int64_t B, int64_t I, int64_t H, const ffi::Buffer<ffi::F32>& kernel,
                        const ffi::Buffer<ffi::F32>& bias) {
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
    const int64_t Gp = 4 * (j1 - j0);
    workspace.worker(p, aligned((I + H) * Gp) + aligned(packed_size(I + H, Gp)) + aligned(B * (I + H)) + B * Gp);
  }
  run_workers(workers, [&](int p) {
    // This worker's units j0..j1: its columns of [W; U] and of the gates, gathered as
    // (i, f, a, o) blocks of width Hp. Each step's product takes [x_t, h_t] at once, so
    // the input projection runs in the same kernel and nothing of size T x B x 4H is kept.
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0, Gp = 4 * Hp, K = I + H;
    float* wp = workspace.worker(p, 0);  // (I+H, Gp)
    float* packed = wp + aligned(K * Gp);              // the same, packed
    float* xh = packed + aligned(packed_size(K, Gp));  // (B, I+H): [x_t, h_t]
    float* g = xh + aligned(B * K);                    // (B, Gp): the step's gates before their nonlinearities
    for (int64_t row = 0; row < K; ++row)
      for (int q = 0; q < 4; ++q) std::memcpy(wp + row * Gp + q * Hp, w + row * G + q * H + j0, sizeof(float) * Hp);
    pack_panels(wp, Gp, false, K, Gp, packed);
    const float *bi = b + j0, *bf = bi + H, *ba = bi + 2 * H, *bo = bi + 3 * H;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < B; ++r) std::memcpy(xh + r * K, x + (t * B + r) * I, sizeof(float) * I);
      if (t > 0) barrier.wait();  // h_t complete
      for (int64_t r = 0; r < B; ++r) std::memcpy(xh + r * K + I, h + (t * B + r) * H, sizeof(float) * H);
      packed_gemm(B, Gp, K, xh, K, packed, g, Gp, false);
      for (int64_t r = 0; r < B; ++r) {
        const float* gi = g + r * Gp;
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
          const float i = sigmoid(gi[j] + bi[j]), f = sigmoid(gf[j] + bf[j]), a = tanh_approx(ga[j] + ba[j]),
                      o = sigmoid(go[j] + bo[j]);
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
    workspace.worker(p, std::max(packed_size(G, j1 - j0), weight_gradient_workspace(j1 - j0)));
  }
  run_workers(workers, [&](int p) {
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0;
    float* ut = workspace.worker(p, 0);  // U[j0:j1]^T (4H, Hp), packed; then the weight gradients' chunks
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
    // The weight gradients of the gate columns this worker wrote: no other core's results,
    // and no wait for the other workers.
    weight_gradients({{x, I, I, dk + j0}, {hs.typed_data(), H, H, dk + I * G + j0}}, dg + j0, G, T * B, Hp, 4, H, G,
                     db + j0, ut);
  });
  return ffi::Error::Success();
}

// The reset-after GRU (PyTorch's; zoo.nn.recurrence.gru_step(reset_after=True)): blocks
// (r, z, n), r = s(x W_r + b_r + h U_r), z likewise, q = h U_n + b_hn,
// n = tanh(x W_n + b_n + r q), h' = (1 - z) n + z h ("keep"), or (1 - z) h + z n ("take").
// Shared out among the workers by hidden units, as the LSTM.
ffi::Error check_gru(int64_t I, int64_t H, const ffi::Buffer<ffi::F32>& w_i, const ffi::Buffer<ffi::F32>& w_h) {
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
    const int64_t Hp = j1 - j0, K = I + H;
    workspace.worker(p, aligned(K * 3 * Hp) + aligned(packed_size(K, 2 * Hp)) + aligned(packed_size(I, Hp)) +
                            aligned(packed_size(H, Hp)) + aligned(B * K) + B * 4 * Hp);
  }
  run_workers(workers, [&, keep](int p) {
    // As the LSTM's: each step's products take [x_t, h_t] at once. r and z sum x W and h U
    // in one product; n keeps them apart (r scales h U_n alone), so its two are separate.
    auto [j0, j1] = share(H, p, workers);
    const int64_t Hp = j1 - j0, Gp = 3 * Hp, K = I + H;
    float* wp = workspace.worker(p, 0);                      // [W; U] columns of units j0..j1, (I+H, Gp)
    float* rz = wp + aligned(K * Gp);                        // [W_r W_z; U_r U_z] packed
    float* xn = rz + aligned(packed_size(K, 2 * Hp));        // W_n packed
    float* hn_packed = xn + aligned(packed_size(I, Hp));     // U_n packed
    float* xh = hn_packed + aligned(packed_size(H, Hp));     // (B, I+H): [x_t, h_t]
    float* g = xh + aligned(B * K);                          // (B, 4Hp): x W_r + h U_r, same for z, x W_n, h U_n
    for (int q = 0; q < 3; ++q) {
      for (int64_t row = 0; row < I; ++row)
        std::memcpy(wp + row * Gp + q * Hp, w_i.typed_data() + row * G + q * H + j0, sizeof(float) * Hp);
      for (int64_t row = 0; row < H; ++row)
        std::memcpy(wp + (I + row) * Gp + q * Hp, w_h.typed_data() + row * G + q * H + j0, sizeof(float) * Hp);
    }
    pack_panels(wp, Gp, false, K, 2 * Hp, rz);
    pack_panels(wp + 2 * Hp, Gp, false, I, Hp, xn);
    pack_panels(wp + I * Gp + 2 * Hp, Gp, false, H, Hp, hn_packed);
    const float* x = xs.typed_data();
    const float *br = bias.typed_data() + j0, *bz = br + H, *bx = bz + H;
    const float* bn = b_hn.typed_data() + j0;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < B; ++r) std::memcpy(xh + r * K, x + (t * B + r) * I, sizeof(float) * I);
      if (t > 0) barrier.wait();  // h_t complete
      for (int64_t r = 0; r < B; ++r) std::memcpy(xh + r * K + I, h + (t * B + r) * H, sizeof(float) * H);
      packed_gemm(B, 2 * Hp, K, xh, K, rz, g, 4 * Hp, false);
      packed_gemm(B, Hp, I, xh, K, xn, g + 2 * Hp, 4 * Hp, false);
      packed_gemm(B, Hp, H, xh + I, K, hn_packed, g + 3 * Hp, 4 * Hp, false);
      for (int64_t r = 0; r < B; ++r) {
        const float *sr = g + r * 4 * Hp, *sz = sr + Hp, *sx = sz + Hp, *sq = sx + Hp;
        const float* hp = h + (t * B + r) * H + j0;
        float* hn = h + ((t + 1) * B + r) * H + j0;
        float *ar = act + (t * B + r) * 4 * H + j0, *az = ar + H, *an = az + H, *aq = an + H;
        const float z_keeps = keep ? 1.0f : 0.0f;  // h' = (1 - w) n + w h with w = z or 1 - z
#pragma GCC ivdep
        for (int64_t j = 0; j < Hp; ++j) {
          const float rj = sigmoid(sr[j] + br[j]), zj = sigmoid(sz[j] + bz[j]);
          const float qj = sq[j] + bn[j];
          const float nj = tanh_approx(sx[j] + bx[j] + rj * qj);
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
    workspace.worker(p, aligned(std::max(packed_size(G, j1 - j0), weight_gradient_workspace(j1 - j0))) +
                            (p == 0 ? aligned(T * B * G) + G : 0));
  }
  const int64_t first = aligned(std::max(packed_size(G, share(H, 0, workers).second),
                                         weight_gradient_workspace(share(H, 0, workers).second)));
  float* dgh = workspace.worker(0, 0) + first;  // (T, B, 3H)
  float* dgh_sums = dgh + aligned(T * B * G);   // (3H): the sums of dgh's columns, of which db_hn is the n block
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
    // The weight gradients of the gate columns this worker wrote: no other core's results,
    // and no wait for the other workers.
    weight_gradients({{xs.typed_data(), I, I, dw_i->typed_data() + j0}}, dgx + j0, G, T * B, Hp, 3, H, G,
                     dbias->typed_data() + j0, ut);
    weight_gradients({{h, H, H, dw_h->typed_data() + j0}}, dgh + j0, G, T * B, Hp, 3, H, G, dgh_sums + j0, ut);
    std::memcpy(db_hn->typed_data() + j0, dgh_sums + 2 * H + j0, sizeof(float) * Hp);
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
