// zoo's CPU Winograd convolution as XLA FFI handlers (zoo.native): a stride-1 3x3
// cross-correlation of an NHWC input with an HWIO kernel by F(2x2, 3x3) (Lavin & Gray
// 2016), with the transforms of zoo.nn.fastconv: a 4x4 input tile d gives the 2x2 output
// tile A^T [U * (B^T d B)] A, U = G g G^T the kernel's 16 planes.
//
// ZooWinogradForward: y = the convolution of x, or (for the input's gradient) the
// transposed convolution, by the flipped kernel with its channels swapped, whose planes
// are the kernel's permuted and each used transposed. ZooWinogradKernelGrad: the kernel's
// gradient, summed in the Winograd domain, dU_k = V_k^T dM_k over all tiles (V = B^T d B
// of x's tiles, dM = A dY A^T of dy's), then taken back to 3x3 as G^T dU G.
//
// Why kernels of our own: XLA:CPU compiles the same computation written in JAX as about a
// hundred fusions and 48 dots per convolution, a second of compile each (six of them in
// ResNet-18), and materialises the 16 transformed planes of the whole batch. Here the
// forward runs in chunks of tiles that stay in one core's cache (transform a chunk's
// input, 16 products on the planes packed once per call by zoo_native::packed_gemm, the
// output transform, stored), or, for wide channels, in blocks of tiles that stay in the
// last-level cache, each plane's product a panel of columns per item. The kernel gradient
// transforms a block at a time, then sums each plane's product over it.

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common.h"
#include "gemm.h"

namespace {

using namespace zoo_native;

struct Tiles {
  int64_t B, H, W, C, O, pt, pl, Ho, Wo;
  int64_t th() const { return (Ho + 1) / 2; }
  int64_t tw() const { return (Wo + 1) / 2; }
  int64_t count() const { return B * th() * tw(); }
  // Tile `tile` (image-major, then tile rows, then columns): its image b and tile row and column.
  struct At {
    int64_t b, i, j;
  };
  At at(int64_t tile) const { return {tile / (th() * tw()), tile / tw() % th(), tile % tw()}; }
};

ffi::Error tiles_of(ffi::Span<const int64_t> x, int64_t C, int64_t O, int64_t pt, int64_t pb, int64_t pl,
                    int64_t pr, Tiles* t) {
  if (x.size() != 4 || x[3] != C) return ffi::Error::InvalidArgument("zoo winograd: input must be (B, H, W, C)");
  if (std::min({pt, pb, pl, pr}) < 0 || std::max({pt, pb, pl, pr}) > 2)
    return ffi::Error::InvalidArgument("zoo winograd: each padding must lie in [0, 2]");
  *t = Tiles{x[0], x[1], x[2], C, O, pt, pl, x[1] + pt + pb - 2, x[2] + pl + pr - 2};
  if (t->B < 1 || t->Ho < 1 || t->Wo < 1 || C < 1 || O < 1)
    return ffi::Error::InvalidArgument("zoo winograd: empty input, kernel or output");
  return ffi::Error::Success();
}

template <typename T>
inline T load(const float* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
inline void store(float* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

// fn(c, T) over channels [0, n): a vector at a time, then the rest one float at a time.
template <typename Fn>
inline void over_channels(int64_t n, Fn fn) {
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) fn(c, Vec{});
  for (; c < n; ++c) fn(c, 0.0f);
}

// The pixel (y, x) of image b, or `zeros` outside the map (padding, or a tile past its edge).
inline const float* pixel(const float* image, const float* zeros, int64_t b, int64_t y, int64_t x, int64_t H,
                          int64_t W, int64_t C) {
  return y < 0 || y >= H || x < 0 || x >= W ? zeros : image + ((b * H + y) * W + x) * C;
}

// V = B^T d B of tiles [t0, t0 + n) of x into v[k * ldv + (t - t0) * C + c], plane k = 4r + q.
void input_tiles(const Tiles& g, const float* x, const float* zeros, int64_t t0, int64_t n, float* v, int64_t ldv) {
  for (int64_t t = 0; t < n; ++t) {
    const auto [b, i, j] = g.at(t0 + t);
    const float* d[16];
    for (int r = 0; r < 4; ++r)
      for (int s = 0; s < 4; ++s) d[4 * r + s] = pixel(x, zeros, b, 2 * i + r - g.pt, 2 * j + s - g.pl, g.H, g.W, g.C);
    float* out = v + t * g.C;
    over_channels(g.C, [&](int64_t c, auto kind) {
      using T = decltype(kind);
      T u[16];  // B^T d: rows 0 - 2, 1 + 2, 2 - 1, 1 - 3
      for (int s = 0; s < 4; ++s) {
        const T d0 = load<T>(d[s] + c), d1 = load<T>(d[4 + s] + c), d2 = load<T>(d[8 + s] + c),
                d3 = load<T>(d[12 + s] + c);
        u[s] = d0 - d2, u[4 + s] = d1 + d2, u[8 + s] = d2 - d1, u[12 + s] = d1 - d3;
      }
      for (int r = 0; r < 4; ++r) {  // (B^T d) B: the same on columns
        const T u0 = u[4 * r], u1 = u[4 * r + 1], u2 = u[4 * r + 2], u3 = u[4 * r + 3];
        store(out + (4 * r) * ldv + c, u0 - u2);
        store(out + (4 * r + 1) * ldv + c, u1 + u2);
        store(out + (4 * r + 2) * ldv + c, u2 - u1);
        store(out + (4 * r + 3) * ldv + c, u1 - u3);
      }
    });
  }
}

// Output tiles A^T m A of tiles [t0, t0 + n) from m[k * ldm + (t - t0) * O + o] into y
// (B, Ho, Wo, O); a tile's outputs past the map go to `spill`.
void output_tiles(const Tiles& g, const float* m, int64_t ldm, int64_t t0, int64_t n, float* y, float* spill) {
  const int64_t O = g.O;
  for (int64_t t = 0; t < n; ++t) {
    const auto [b, i, j] = g.at(t0 + t);
    float* out[4];
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 2; ++q) {
        const int64_t oy = 2 * i + p, ox = 2 * j + q;
        out[2 * p + q] = oy < g.Ho && ox < g.Wo ? y + ((b * g.Ho + oy) * g.Wo + ox) * O : spill;
      }
    const float* tm = m + t * O;
    over_channels(O, [&](int64_t o, auto kind) {
      using T = decltype(kind);
      T s[8];  // A^T m: rows 0 + 1 + 2 and 1 - 2 - 3
      for (int col = 0; col < 4; ++col) {
        const T m0 = load<T>(tm + col * ldm + o), m1 = load<T>(tm + (4 + col) * ldm + o),
                m2 = load<T>(tm + (8 + col) * ldm + o), m3 = load<T>(tm + (12 + col) * ldm + o);
        s[col] = m0 + m1 + m2, s[4 + col] = m1 - m2 - m3;
      }
      for (int p = 0; p < 2; ++p) {
        store(out[2 * p] + o, s[4 * p] + s[4 * p + 1] + s[4 * p + 2]);
        store(out[2 * p + 1] + o, s[4 * p + 1] - s[4 * p + 2] - s[4 * p + 3]);
      }
    });
  }
}

// dM = A dY A^T of tiles [t0, t0 + n) of dy (B, Ho, Wo, O) into dm[k * ldm + (t - t0) * O + o]:
// A's rows are (1, 0), (1, 1), (1, -1), (0, -1).
void gradient_tiles(const Tiles& g, const float* dy, const float* zeros, int64_t t0, int64_t n, float* dm,
                    int64_t ldm) {
  const int64_t O = g.O;
  for (int64_t t = 0; t < n; ++t) {
    const auto [b, i, j] = g.at(t0 + t);
    const float* d[4];
    for (int p = 0; p < 2; ++p)
      for (int q = 0; q < 2; ++q) d[2 * p + q] = pixel(dy, zeros, b, 2 * i + p, 2 * j + q, g.Ho, g.Wo, O);
    float* out = dm + t * O;
    over_channels(O, [&](int64_t o, auto kind) {
      using T = decltype(kind);
      const T d00 = load<T>(d[0] + o), d01 = load<T>(d[1] + o), d10 = load<T>(d[2] + o), d11 = load<T>(d[3] + o);
      const T rows[4][2] = {{d00, d01}, {d00 + d10, d01 + d11}, {d00 - d10, d01 - d11}, {-d10, -d11}};
      for (int r = 0; r < 4; ++r) {
        const T a = rows[r][0], b = rows[r][1];
        store(out + (4 * r) * ldm + o, a);
        store(out + (4 * r + 1) * ldm + o, a + b);
        store(out + (4 * r + 2) * ldm + o, a - b);
        store(out + (4 * r + 3) * ldm + o, -b);
      }
    });
  }
}

// G of F(2x2, 3x3): a kernel's planes are U = G g G^T, plane k = 4i + j; and G^T, which
// takes the planes' gradient dU back to the kernel's, G^T dU G.
constexpr float kG[4][3] = {{1.0f, 0.0f, 0.0f}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0.0f, 0.0f, 1.0f}};
constexpr float kGT[3][4] = {{1.0f, 0.5f, 0.5f, 0.0f}, {0.0f, 0.5f, -0.5f, 0.0f}, {0.0f, 0.5f, 0.5f, 1.0f}};

// Flipping a 3x3 kernel in both spatial axes permutes its planes: plane (i, j) of the
// flipped kernel is plane (p(i), p(j)), p swapping 0 and 3 (G J = P G).
constexpr int kFlip[4] = {3, 1, 2, 0};

// out[e] = sum_t weights[t] * in[t * stride + e] for e in [0, n): the kernel's transforms,
// whose weights are 0, +-1/2, +-1/4 or 1.
template <int Terms>
void weighted_sum(const float (&weights)[Terms], const float* in, int64_t stride, int64_t n, float* out) {
  over_channels(n, [&](int64_t e, auto kind) {
    decltype(kind) sum = kind;
    for (int t = 0; t < Terms; ++t)
      if (weights[t] != 0.0f) sum += weights[t] * load<decltype(kind)>(in + t * stride + e);
    store(out + e, sum);
  });
}

constexpr int64_t kKernelSlice = 4096;  // kernel values per item of its transforms

// out = M in M^T on an In x In grid of (C, O) matrices, `size` = C * O values each, for
// values [e0, e0 + n) of every matrix: out[p][q] = sum_rs M[p][r] M[q][s] in[r][s]. With M = G
// the kernel's planes (3x3 -> 4x4); with M = G^T the kernel's gradient from the planes'.
template <int Out, int In>
void grid_transform(const float (&M)[Out][In], const float* in, int64_t size, int64_t e0, int64_t n, float* out) {
  for (int p = 0; p < Out; ++p)
    for (int q = 0; q < Out; ++q) {
      float weights[In * In];
      for (int r = 0; r < In; ++r)
        for (int s = 0; s < In; ++s) weights[In * r + s] = M[p][r] * M[q][s];
      weighted_sum(weights, in + e0, size, n, out + (Out * p + q) * size + e0);
    }
}

constexpr int64_t kTransformTiles = 64;  // tiles per transform item
constexpr int64_t kProductColumns = 256;  // output channels per product item (a multiple of kNr)

// Tiles per block: the block's transformed planes (16 x tiles x (C + O) floats) take about
// 8 MB, in a last-level cache, and at least kTransformTiles.
int64_t block_tiles(int64_t C, int64_t O) {
  return std::max<int64_t>(kTransformTiles, (8 << 20) / (16 * 4 * (C + O)) / kTransformTiles * kTransformTiles);
}

// Item counts of phases: `first`, then per block of tiles the transforms (items of
// kTransformTiles tiles), 16 x column_blocks products, and (forward only) the output
// transforms; then `last` items.
std::vector<int64_t> block_phases(int64_t tiles, int64_t block, int64_t column_blocks, bool output,
                                  std::vector<int64_t> first, int64_t last) {
  std::vector<int64_t> counts = std::move(first);
  for (int64_t b0 = 0; b0 < tiles; b0 += block) {
    const int64_t items = (std::min(block, tiles - b0) + kTransformTiles - 1) / kTransformTiles;
    counts.push_back(items);
    counts.push_back(16 * column_blocks);
    if (output) counts.push_back(items);
  }
  counts.push_back(last);
  return counts;
}

// Tiles per chunk when the forward runs in chunks, 0 when it runs in blocks. A thread takes
// a chunk through all three steps in its own cache, its V and M in half of a 1 MB L2 (8 to
// 64 tiles), and reads all 16 packed planes per chunk: worth it while they are small (C x
// O up to 128 x 128, 1 MB) and the chunks many enough to share among the threads.
int64_t chunk_tiles(int64_t tiles, int64_t C, int64_t O, int threads) {
  const int64_t n = std::clamp<int64_t>((512 << 10) / (16 * 4 * (C + O)) / kMr * kMr, 8, 64);
  return C * O <= 128 * 128 && tiles >= 4 * threads * n ? n : 0;
}

// A chunk's V (16 x n x C), M (16 x n x O) and spill (O).
int64_t chunk_size(int64_t n, int64_t C, int64_t O) { return aligned(16 * n * C) + aligned(16 * n * O) + aligned(O); }

// x (B, H, W, C), kernel (3, 3, C, O) -> y (B, Ho, Wo, O); with `transposed`, kernel
// (3, 3, O, C) and y its transposed convolution (the input's gradient of a convolution by
// it): by the flipped kernel, its channels swapped, whose planes are the kernel's
// permuted and transposed. The planes are transformed (phase 0, a slice of the kernel per
// item) and packed (phase 1, a plane per item) once per call; then either chunks of tiles,
// each by one thread (`chunk_tiles`), or,
// per block of tiles, each plane's product a panel of columns at a time, so that a plane
// is read once per block.
ffi::Error WinogradForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                               ffi::ResultBuffer<ffi::F32> y, int64_t pad_top, int64_t pad_bottom, int64_t pad_left,
                               int64_t pad_right, bool transposed) {
  const auto k = kernel.dimensions();
  if (k.size() != 4 || k[0] != 3 || k[1] != 3)
    return ffi::Error::InvalidArgument("zoo winograd: the kernel must be (3, 3, C, O)");
  const int64_t C = transposed ? k[3] : k[2], O = transposed ? k[2] : k[3];
  Tiles g;
  if (auto e = tiles_of(x.dimensions(), C, O, pad_top, pad_bottom, pad_left, pad_right, &g); e.failure()) return e;
  const auto d = y->dimensions();
  if (d.size() != 4 || d[0] != g.B || d[1] != g.Ho || d[2] != g.Wo || d[3] != O)
    return ffi::Error::InvalidArgument("zoo winograd: output must be (B, Ho, Wo, O)");
  const int64_t block = block_tiles(C, O), column_blocks = (O + kProductColumns - 1) / kProductColumns;
  const int64_t plane = packed_size(C, O);
  const int helpers = helper_count(pool, 16 * g.count() * C * O);
  const int64_t chunk = chunk_tiles(g.count(), C, O, helpers + 1);
  const int64_t per_thread = chunk > 0 ? chunk_size(chunk, C, O) : aligned(O);
  WorkspaceLease workspace;
  float* packed = workspace.worker(0, 16 * plane + aligned(16 * C * O) + aligned(C) + (helpers + 1) * per_thread +
                                          (chunk > 0 ? 0 : aligned(16 * block * C) + aligned(16 * block * O)));
  float* planes = packed + 16 * plane;
  float* zeros = planes + aligned(16 * C * O);
  std::fill_n(zeros, C, 0.0f);
  float* scratch = zeros + aligned(C);  // per thread: a chunk, or a spill
  float* v = scratch + (helpers + 1) * per_thread;
  float* m = v + aligned(16 * block * C);
  // Phase 0 transforms the kernel a slice at a time, phase 1 packs each plane the product uses.
  const int64_t slices = (C * O + kKernelSlice - 1) / kKernelSlice;
  const auto prepare = [&](int phase, int64_t item) {
    if (phase == 0)
      return grid_transform(kG, kernel.typed_data(), C * O, item * kKernelSlice,
                            std::min(kKernelSlice, C * O - item * kKernelSlice), planes);
    const int i = transposed ? kFlip[item / 4] : item / 4, j = transposed ? kFlip[item % 4] : item % 4;
    pack_panels(planes + (4 * i + j) * C * O, k[3], transposed, C, O, packed + item * plane);
  };
  if (chunk > 0) {  // chunks: each transformed, multiplied and transformed back by one thread, in its cache
    run_phases(pool, helpers, {slices, 16, (g.count() + chunk - 1) / chunk}, [&](int phase, int64_t item, int slot) {
      if (phase < 2) return prepare(phase, item);
      float* own = scratch + slot * per_thread;
      float* mc = own + aligned(16 * chunk * C);
      const int64_t t0 = item * chunk, rows = std::min(chunk, g.count() - t0);
      input_tiles(g, x.typed_data(), zeros, t0, rows, own, chunk * C);
      for (int p = 0; p < 16; ++p)
        packed_gemm(rows, O, C, own + p * chunk * C, C, packed + p * plane, mc + p * chunk * O, O, false);
      output_tiles(g, mc, chunk * O, t0, rows, y->typed_data(), mc + aligned(16 * chunk * O));
    });
    return ffi::Error::Success();
  }
  run_phases(pool, helpers, block_phases(g.count(), block, column_blocks, true, {slices, 16}, 0),
             [&](int phase, int64_t item, int slot) {
               if (phase < 2) return prepare(phase, item);
               float* own = scratch + slot * per_thread;
               const int64_t b0 = (phase - 2) / 3 * block, tiles = std::min(block, g.count() - b0);
               const int64_t t0 = item * kTransformTiles, n = std::min(kTransformTiles, tiles - t0);
               switch ((phase - 2) % 3) {
                 case 0: return input_tiles(g, x.typed_data(), zeros, b0 + t0, n, v + t0 * C, block * C);
                 case 2: return output_tiles(g, m + t0 * O, block * O, b0 + t0, n, y->typed_data(), own);
               }
               const int64_t p = item / column_blocks, col = item % column_blocks * kProductColumns;
               packed_gemm(tiles, std::min(kProductColumns, O - col), C, v + p * block * C, C,
                           packed + p * plane + col * C, m + p * block * O + col, O, false);
             });
  return ffi::Error::Success();
}

constexpr int64_t kGradChunk = 256;           // tiles per packed chunk of dM (as the RNNs' weight gradients)

// x (B, H, W, C), dy (B, Ho, Wo, O) -> dkernel (3, 3, C, O), the forward's padding. Blocks
// of tiles whose V and dM take about 8 MB (in a last-level cache) are transformed, then each
// plane's product dU_k = V_k^T dM_k summed over the block; last, dkernel = G^T dU G.
ffi::Error WinogradKernelGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                                  ffi::ResultBuffer<ffi::F32> dkernel, int64_t pad_top, int64_t pad_bottom,
                                  int64_t pad_left, int64_t pad_right) {
  const auto k = dkernel->dimensions();
  if (k.size() != 4 || k[0] != 3 || k[1] != 3)
    return ffi::Error::InvalidArgument("zoo winograd: the kernel's gradient must be (3, 3, C, O)");
  const int64_t C = k[2], O = k[3];
  Tiles g;
  if (auto e = tiles_of(x.dimensions(), C, O, pad_top, pad_bottom, pad_left, pad_right, &g); e.failure()) return e;
  const auto d = dy.dimensions();
  if (d.size() != 4 || d[0] != g.B || d[1] != g.Ho || d[2] != g.Wo || d[3] != O)
    return ffi::Error::InvalidArgument("zoo winograd: output gradient must be (B, Ho, Wo, O)");
  const int64_t block = block_tiles(C, O), column_blocks = (O + kProductColumns - 1) / kProductColumns;
  const int helpers = helper_count(pool, 16 * g.count() * C * O);
  const int64_t pack = packed_size(kGradChunk, kProductColumns);
  WorkspaceLease workspace;
  float* du = workspace.worker(0, aligned(16 * C * O) + aligned(16 * block * C) + aligned(16 * block * O) +
                                      aligned(std::max(C, O)) + (helpers + 1) * pack);
  float* v = du + aligned(16 * C * O);
  float* dm = v + aligned(16 * block * C);
  float* zeros = dm + aligned(16 * block * O);
  std::fill_n(zeros, std::max(C, O), 0.0f);
  float* packs = zeros + aligned(std::max(C, O));
  const int64_t last = 2 * ((g.count() + block - 1) / block);  // the phase of the kernel's transform
  const int64_t slices = (C * O + kKernelSlice - 1) / kKernelSlice;
  run_phases(pool, helpers, block_phases(g.count(), block, column_blocks, false, {}, slices),
             [&](int phase, int64_t item, int slot) {
               if (phase == last) {
                 const int64_t e0 = item * kKernelSlice;
                 return grid_transform(kGT, du, C * O, e0, std::min(kKernelSlice, C * O - e0), dkernel->typed_data());
               }
               const int64_t b0 = phase / 2 * block, tiles = std::min(block, g.count() - b0);
               if (phase % 2 == 0) {
                 const int64_t t0 = item * kTransformTiles, n = std::min(kTransformTiles, tiles - t0);
                 input_tiles(g, x.typed_data(), zeros, b0 + t0, n, v + t0 * C, block * C);
                 return gradient_tiles(g, dy.typed_data(), zeros, b0 + t0, n, dm + t0 * O, block * O);
               }
               const int64_t p = item / column_blocks, col = item % column_blocks * kProductColumns;
               const int64_t cols = std::min(kProductColumns, O - col);
               float* pack_slot = packs + slot * pack;
               for (int64_t t0 = 0; t0 < tiles; t0 += kGradChunk) {
                 const int64_t rows = std::min(kGradChunk, tiles - t0);
                 pack_panels(dm + p * block * O + t0 * O + col, O, false, rows, cols, pack_slot);
                 packed_gemm<true>(C, cols, rows, v + p * block * C + t0 * C, C, pack_slot, du + p * C * O + col, O,
                                   b0 + t0 > 0);
               }
             });
  return ffi::Error::Success();
}

}  // namespace

// Both calls: x and a second operand (the kernel forward, dy for the kernel's gradient), one
// out, the padding [and the forward's `transposed` flag].
auto winograd_operands() {
  return ffi::Ffi::Bind()
      .Ctx<ffi::ThreadPool>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Arg<ffi::Buffer<ffi::F32>>()
      .Ret<ffi::Buffer<ffi::F32>>();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooWinogradForward, WinogradForwardImpl,
                              with_padding(winograd_operands()).Attr<bool>("transposed"));  // x, kernel -> y
XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooWinogradKernelGrad, WinogradKernelGradImpl,
                              with_padding(winograd_operands()));  // x, dy -> dkernel
