// zoo's CPU convolution kernels as XLA FFI handlers (zoo.native): a stride-1 2-D
// cross-correlation of an NHWC input with an HWIO kernel (ZooConvForward), and its kernel
// gradient (ZooConvKernelGrad). The input gradient is ZooConvForward again, of the output
// gradient with the flipped, transposed kernel (zoo.native.conv2d).
//
// Why kernels of our own: XLA:CPU's convolution runs narrow channel counts (16-32, an
// autoencoder's or a U-Net's) at a third of the machine's matmul speed. Here the
// convolution is a matmul whose left operand is never built: the input is padded once,
// and a block of Rows output pixels of one row reads, for every kernel tap, Rows
// consecutive pixels of the padded input, which lie C floats apart. The right operand,
// the kernel as a (KH*KW*C, O) matrix, is packed once per call into column panels of one
// or two vectors, and a register-blocked kernel accumulates Rows x panel outputs over all
// taps and channels (for one vector of outputs and a kernel 3 wide, each input pixel is
// broadcast once for the 3 taps it meets). The kernel gradient is the same product
// transposed: a block of input channels by a panel of output channels, summed over chunks
// of output rows. A few output channels (a decoder's last layer) run along the input
// channels instead, and fewer output channels than a vector's lanes, or a single input
// channel's kernel gradient, on planes (below).
//
// The work goes in items (groups of rows) that the calling thread and tasks on XLA's
// intra-op pool claim one at a time (zoo_native::run_phases).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "common.h"

namespace {

using namespace zoo_native;

struct Geometry {
  int64_t B, H, W, C, KH, KW, O, pt, pb, pl, pr;
  int64_t Hp() const { return H + pt + pb; }
  int64_t Wp() const { return W + pl + pr; }
  int64_t Ho() const { return Hp() - KH + 1; }
  int64_t Wo() const { return Wp() - KW + 1; }
  int64_t K() const { return KH * KW * C; }
};

ffi::Error geometry(const ffi::Buffer<ffi::F32>& x, int64_t KH, int64_t KW, int64_t C, int64_t O, int64_t pt,
                    int64_t pb, int64_t pl, int64_t pr, Geometry* g) {
  auto d = x.dimensions();
  if (d.size() != 4 || d[3] != C) return ffi::Error::InvalidArgument("zoo conv: input must be (B, H, W, C)");
  if (std::min({pt, pb, pl, pr}) < 0 || std::max(pt, pb) >= KH || std::max(pl, pr) >= KW)
    return ffi::Error::InvalidArgument("zoo conv: each padding must lie in [0, kernel size)");
  *g = Geometry{d[0], d[1], d[2], C, KH, KW, O, pt, pb, pl, pr};
  if (g->Ho() < 1 || g->Wo() < 1 || g->B < 1 || C < 1 || O < 1)
    return ffi::Error::InvalidArgument("zoo conv: empty input, kernel or output");
  return ffi::Error::Success();
}

// Padded rows [r0, r1) of the (B*Hp) rows of the padded input (B, Hp, Wp, C).
void pad_rows(const float* x, const Geometry& g, int64_t r0, int64_t r1, float* padded) {
  const int64_t Hp = g.Hp(), Wp = g.Wp(), C = g.C;
  for (int64_t row = r0; row < r1; ++row) {
    const int64_t b = row / Hp, y = row % Hp - g.pt;
    float* out = padded + row * Wp * C;
    if (y < 0 || y >= g.H) {
      std::memset(out, 0, sizeof(float) * Wp * C);
      continue;
    }
    std::memset(out, 0, sizeof(float) * g.pl * C);
    std::memcpy(out + g.pl * C, x + (b * g.H + y) * g.W * C, sizeof(float) * g.W * C);
    std::memset(out + (g.pl + g.W) * C, 0, sizeof(float) * g.pr * C);
  }
}

// Column panels of Nv vectors: panels[p0, p1) of the (K, N) matrix m (row-major) into
// out[(panel * K + k) * Nr + col], zero past N.
template <int Nv>
void pack_kernel(const float* m, int64_t K, int64_t N, int64_t p0, int64_t p1, float* out) {
  constexpr int Nr = Nv * kLanes;
  for (int64_t panel = p0; panel < p1; ++panel) {
    const int64_t n0 = panel * Nr, cols = std::min<int64_t>(Nr, N - n0);
    float* dst = out + panel * K * Nr;
    for (int64_t k = 0; k < K; ++k) {
      std::memcpy(dst + k * Nr, m + k * N + n0, sizeof(float) * cols);
      std::fill(dst + k * Nr + cols, dst + (k + 1) * Nr, 0.0f);
    }
  }
}

// The accumulators are copied one vector at a time: a copy of a whole row of them would
// take the array's address, and GCC would then keep all of them in memory, storing each
// after every multiply-add (a third of the time of two-vector panels).

// out (rows, cols) of Rows x Nr accumulators, row stride ldo.
template <int Rows, int Nv>
inline void store(const Vec (&acc)[Rows][Nv], float* out, int64_t ldo, int64_t rows, int64_t cols) {
  for (int r = 0; r < rows; ++r) {
    float row[Nv * kLanes];
    for (int v = 0; v < Nv; ++v) std::memcpy(row + v * kLanes, &acc[r][v], sizeof(Vec));
    std::memcpy(out + r * ldo, row, sizeof(float) * cols);
  }
}

// The accumulators from out (rows, cols), zero elsewhere.
template <int Rows, int Nv>
inline void load(Vec (&acc)[Rows][Nv], const float* out, int64_t ldo, int64_t rows, int64_t cols) {
  for (int r = 0; r < Rows; ++r) {
    float row[Nv * kLanes] = {};
    if (r < rows) std::memcpy(row, out + r * ldo, sizeof(float) * cols);
    for (int v = 0; v < Nv; ++v) std::memcpy(&acc[r][v], row + v * kLanes, sizeof(Vec));
  }
}

// What the forward adds to each finished output: a bias per output channel, then ReLU
// (max(y, 0), NaN kept) if asked. The input gradient's call, a plain correlation, has none.
struct Epilogue {
  const float* bias;  // O floats, or null
  bool relu;
};

// The epilogue on accumulators of one panel: bias_panel holds its Nv vectors of bias.
template <int Rows, int Nv>
inline void finish(Vec (&acc)[Rows][Nv], const Vec (&bias_panel)[Nv], bool relu) {
  const Vec zero = {};
  for (int r = 0; r < Rows; ++r)
    for (int v = 0; v < Nv; ++v) {
      acc[r][v] += bias_panel[v];
      if (relu) acc[r][v] = acc[r][v] < zero ? zero : acc[r][v];
    }
}

inline float finish(float y, const Epilogue& epilogue, int64_t o) {
  if (epilogue.bias) y += epilogue.bias[o];
  return epilogue.relu && y < 0.0f ? 0.0f : y;
}

// acc[r] += sum over k < K of a[r * row_stride + k * k_stride] * b[k * ldb ...+ Nr]: the
// register-blocked product of both kernels (the forward's rows are pixels C floats apart,
// the kernel gradient's are channels, one float apart).
template <int Rows, int Nv>
inline void multiply_add(Vec (&acc)[Rows][Nv], const float* a, int64_t row_stride, int64_t k_stride, const float* b,
                         int64_t ldb, int64_t K) {
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    Vec bk[Nv];
    for (int v = 0; v < Nv; ++v) std::memcpy(&bk[v], b + k * ldb + v * kLanes, sizeof(Vec));
    for (int r = 0; r < Rows; ++r) {
      const float ar = a[r * row_stride + k * k_stride];
      for (int v = 0; v < Nv; ++v) acc[r][v] += ar * bk[v];
    }
  }
}

// Rows consecutive output pixels by one panel: a points at the first pixel's window in
// the padded input (pixels C floats apart), taps[t] the offset of kernel tap t; the last
// group of taps (bias_panel given) finishes the outputs.
template <int Rows, int Nv>
void conv_block(const float* a, int64_t C, const int64_t* taps, int64_t n_taps, const float* panel, float* out,
                int64_t ldo, int64_t rows, int64_t cols, bool accumulate, const Vec (*bias_panel)[Nv], bool relu) {
  constexpr int Nr = Nv * kLanes;
  Vec acc[Rows][Nv] = {};
  if (accumulate) load<Rows, Nv>(acc, out, ldo, rows, cols);
  for (int64_t t = 0; t < n_taps; ++t) multiply_add<Rows, Nv>(acc, a + taps[t], C, 1, panel + t * C * Nr, Nr, C);
  if (bias_panel) finish<Rows, Nv>(acc, *bias_panel, relu);
  store<Rows, Nv>(acc, out, ldo, rows, cols);
}

// Rows consecutive output pixels by a one-vector panel (16 or fewer output channels) of a
// kernel 3 wide, all taps at once: each input pixel of a window row is broadcast once and
// multiplied by the 3 taps it meets, rather than once per tap. With one vector of
// outputs a broadcast per multiply-add is what limits `conv_block`; here it is one per 3.
// a points at the first pixel's window, row_stride is a padded row (Wp * C floats).
template <int Rows>
void conv_block_3wide(const float* a, int64_t C, int64_t row_stride, int64_t KH, const float* panel, float* out,
                      int64_t ldo, int64_t rows, int64_t cols, const Vec (*bias_panel)[1], bool relu) {
  constexpr int KW = 3;
  Vec acc[Rows][1] = {};
  for (int64_t ky = 0; ky < KH; ++ky) {
    const float* in = a + ky * row_stride;
    const float* w = panel + ky * KW * C * kLanes;
    for (int64_t c = 0; c < C; ++c) {
      Vec taps[KW];
      for (int kx = 0; kx < KW; ++kx) std::memcpy(&taps[kx], w + (kx * C + c) * kLanes, sizeof(Vec));
#pragma GCC unroll 32
      for (int px = 0; px < Rows + KW - 1; ++px) {
        const float v = in[px * C + c];
#pragma GCC unroll 3
        for (int kx = 0; kx < KW; ++kx)
          if (px - kx >= 0 && px - kx < Rows) acc[px - kx][0] += v * taps[kx];
      }
    }
  }
  if (bias_panel) finish<Rows, 1>(acc, *bias_panel, relu);
  store<Rows, 1>(acc, out, ldo, rows, cols);
}

using Block3WideFn = void (*)(const float*, int64_t, int64_t, int64_t, const float*, float*, int64_t, int64_t, int64_t,
                              const Vec (*)[1], bool);

// The block height for output rows of width Wo: the fewest wasted rows, counting a fixed
// cost per block; at most 16 rows of one vector or 12 of two (accumulators, the panel's
// vectors and a broadcast fit the 32 vector registers of AVX-512; half with AVX2).
#if defined(__AVX512F__)
constexpr int kMaxRows1 = 16, kMaxRows2 = 12;
#else
constexpr int kMaxRows1 = 8, kMaxRows2 = 4;
#endif

// A panel's part for one group of taps: L1-sized, a few KiB below 32 KiB.
constexpr int64_t kPanelBytes = 24 * 1024;

int block_rows(int64_t Wo, int max_rows) {
  int best = 4;
  int64_t best_cost = INT64_MAX;
  for (int rows = 4; rows <= max_rows; rows += 4) {
    const int64_t blocks = (Wo + rows - 1) / rows, cost = blocks * (rows + 2);
    if (cost < best_cost) best = rows, best_cost = cost;
  }
  return best;
}

template <int Nv>
using BlockFn = void (*)(const float*, int64_t, const int64_t*, int64_t, const float*, float*, int64_t, int64_t,
                         int64_t, bool, const Vec (*)[Nv], bool);

template <int Nv>
BlockFn<Nv> conv_block_for(int rows) {
  switch (rows) {
    case 16: return conv_block<16, Nv>;
    case 12: return conv_block<12, Nv>;
    case 8: return conv_block<8, Nv>;
    default: return conv_block<4, Nv>;
  }
}

Block3WideFn conv_block_3wide_for(int rows) {
  switch (rows) {
    case 16: return conv_block_3wide<16>;
    case 12: return conv_block_3wide<12>;
    case 8: return conv_block_3wide<8>;
    default: return conv_block_3wide<4>;
  }
}

// Slack after the padded input: a block at a row's end reads up to Rows + KW pixels on,
// and a narrow one a vector past them.
int64_t padded_size(const Geometry& g) { return aligned((g.B * g.Hp() * g.Wp() + 16 + g.KW) * g.C + kLanes); }

// Panels of one vector of output channels, or two for more than one vector's worth.
int panel_vectors(int64_t O) { return O > kLanes ? 2 : 1; }
int64_t panel_width(int64_t O) { return panel_vectors(O) * kLanes; }
int64_t panel_count(int64_t O) { return (O + panel_width(O) - 1) / panel_width(O); }

// A few output channels (a decoder's last layer) would fill one lane in 16 of a panel: such
// convolutions run along the input channels instead, a vector of them per pixel and tap,
// times each output channel's weights, summed across the lanes at the end.
constexpr int64_t kNarrow = 4;
bool narrow(int64_t O) { return O <= kNarrow; }
int64_t channel_vectors(int64_t C) { return (C + kLanes - 1) / kLanes; }

// The kernel packed: panels, or for a narrow output (taps, O, C rounded up to vectors) with
// zeros past C, so that a vector read past a pixel's channels adds nothing.
int64_t packed_size(const Geometry& g) {
  if (narrow(g.O)) return aligned(g.KH * g.KW * g.O * channel_vectors(g.C) * kLanes);
  return aligned(panel_count(g.O) * panel_width(g.O) * g.K());
}

void pack_narrow(const float* kernel, const Geometry& g, float* out) {
  const int64_t Cp = channel_vectors(g.C) * kLanes;
  std::fill(out, out + packed_size(g), 0.0f);
  for (int64_t t = 0; t < g.KH * g.KW; ++t)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t o = 0; o < g.O; ++o) out[(t * g.O + o) * Cp + c] = kernel[(t * g.C + c) * g.O + o];
}

inline float lane_sum(Vec v) {
  float lanes[kLanes];
  std::memcpy(lanes, &v, sizeof lanes);
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total;
}

// kPixels consecutive output pixels of a narrow convolution: a points at the first pixel's
// window in the padded input, taps[t] the offset of tap t, w the kernel by pack_narrow.
constexpr int kPixels = 4;
// Partial: C is not a whole number of vectors (the last is read lane by lane).
template <int O, bool Partial>
void conv_narrow_block(const float* a, int64_t C, const int64_t* taps, int64_t n_taps, const float* w, float* out,
                       int64_t pixels, const Epilogue& epilogue) {
  const int64_t Cp = channel_vectors(C) * kLanes;
  Vec acc[kPixels][O] = {};
  for (int64_t t = 0; t < n_taps; ++t) {
    const float* at = a + taps[t];
    const float* wt = w + t * O * Cp;
    for (int64_t c0 = 0; c0 < Cp; c0 += kLanes) {
      Vec wo[O];
      for (int o = 0; o < O; ++o) std::memcpy(&wo[o], wt + o * Cp + c0, sizeof(Vec));
      // Past the channels lie the next pixel's: zeros instead, as 0 * NaN would be NaN.
      const int64_t lanes = C - c0;
      Vec xv[kPixels];
      if (!Partial || lanes >= kLanes) {
        for (int px = 0; px < kPixels; ++px) std::memcpy(&xv[px], at + px * C + c0, sizeof(Vec));
      } else {
        for (int px = 0; px < kPixels; ++px) {
          float part[kLanes] = {};
          std::memcpy(part, at + px * C + c0, sizeof(float) * lanes);
          std::memcpy(&xv[px], part, sizeof(Vec));
        }
      }
      for (int px = 0; px < kPixels; ++px)
        for (int o = 0; o < O; ++o) acc[px][o] += xv[px] * wo[o];
    }
  }
  for (int px = 0; px < pixels; ++px)
    for (int o = 0; o < O; ++o) out[px * O + o] = finish(lane_sum(acc[px][o]), epilogue, o);
}

int64_t flops(const Geometry& g) { return 2 * g.B * g.Ho() * g.Wo() * g.O * g.K(); }

// The kernel gradients sum over the batch into partials, and each partial sums a fixed
// share of the items in order, whichever thread runs it; the partials are then added in
// order. So the gradient is the same bit for bit from run to run and on any number of
// threads (per-thread partials would depend on which thread took which item).
constexpr int64_t kPartials = 16;
int64_t partial_count(int64_t items) { return std::min(kPartials, items); }

// fn(item) for partial `part`'s share of `items`, in order.
template <typename Fn>
void in_order(int64_t items, int64_t part, int64_t parts, Fn fn) {
  for (int64_t item = items * part / parts; item < items * (part + 1) / parts; ++item) fn(item);
}

// Items of work: padded input rows and output rows go in groups, a few µs each.
constexpr int64_t kPadRowsPerItem = 8, kRowsPerItem = 4;
int64_t items(int64_t count, int64_t per_item) { return (count + per_item - 1) / per_item; }

// One convolution's operands as its blocks read them: the padded input and the packed
// kernel. `prepare_items` items pad and pack, then `run_items` items compute.
struct Conv {
  Geometry g;
  float* padded;  // padded_size(g) floats
  float* packed;  // packed_size(g) floats
  Epilogue epilogue = {nullptr, false};

  int64_t pad_items() const { return items(g.B * g.Hp(), kPadRowsPerItem); }
  int64_t pack_items() const { return narrow(g.O) ? 1 : panel_count(g.O); }
  int64_t prepare_items() const { return pad_items() + pack_items(); }
  int64_t run_items() const { return items(g.B * g.Ho(), kRowsPerItem); }

  void pad(const float* x, int64_t item) const {
    const int64_t r0 = item * kPadRowsPerItem;
    pad_rows(x, g, r0, std::min(r0 + kPadRowsPerItem, g.B * g.Hp()), padded);
  }

  void prepare(const float* x, const float* kernel, int64_t item) const {
    if (item < pad_items()) return pad(x, item);
    const int64_t panel = item - pad_items();
    if (narrow(g.O))
      pack_narrow(kernel, g, packed);
    else if (panel_vectors(g.O) == 2)
      pack_kernel<2>(kernel, g.K(), g.O, panel, panel + 1, packed);
    else
      pack_kernel<1>(kernel, g.K(), g.O, panel, panel + 1, packed);
  }

  void run(float* y, int64_t item) const {
    const int64_t m0 = item * kRowsPerItem, m1 = std::min(m0 + kRowsPerItem, g.B * g.Ho());
    switch (narrow(g.O) ? g.O : 0) {
      case 1: return run_narrow<1>(y, m0, m1);
      case 2: return run_narrow<2>(y, m0, m1);
      case 3: return run_narrow<3>(y, m0, m1);
      case 4: return run_narrow<4>(y, m0, m1);
      default: return panel_vectors(g.O) == 2 ? run_rows<2>(y, m0, m1) : run_rows<1>(y, m0, m1);
    }
  }

  // The kernel's taps as offsets into the padded input.
  void tap_offsets(int64_t* taps) const {
    for (int64_t ky = 0; ky < g.KH; ++ky)
      for (int64_t kx = 0; kx < g.KW; ++kx) taps[ky * g.KW + kx] = (ky * g.Wp() + kx) * g.C;
  }

  const float* row_window(int64_t m) const { return padded + ((m / g.Ho()) * g.Hp() + m % g.Ho()) * g.Wp() * g.C; }

  template <int O>
  void run_narrow(float* y, int64_t m0, int64_t m1) const {
    const int64_t Wo = g.Wo(), C = g.C;
    int64_t taps[64];
    tap_offsets(taps);
    const auto block = C % kLanes == 0 ? conv_narrow_block<O, false> : conv_narrow_block<O, true>;
    for (int64_t m = m0; m < m1; ++m)
      for (int64_t x0 = 0; x0 < Wo; x0 += kPixels)
        block(row_window(m) + x0 * C, C, taps, g.KH * g.KW, packed, y + (m * Wo + x0) * O,
              std::min<int64_t>(kPixels, Wo - x0), epilogue);
  }

  // Output rows [m0, m1) of the (B*Ho) rows (b, y).
  template <int Nv>
  void run_rows(float* y, int64_t m0, int64_t m1) const {
    constexpr int Nr = Nv * kLanes;
    const int64_t Wo = g.Wo(), C = g.C, O = g.O, K = g.K();
    const int rows = block_rows(Wo, Nv == 1 ? kMaxRows1 : kMaxRows2);
    const BlockFn<Nv> block = conv_block_for<Nv>(rows);
    int64_t taps[64];  // kernels up to 64 taps (check_kernel)
    tap_offsets(taps);
    // Taps in groups whose part of a panel stays in the L1 cache for all the blocks of
    // the item's rows; later groups add to the outputs.
    const int64_t n_taps = g.KH * g.KW, group = std::max<int64_t>(1, kPanelBytes / (sizeof(float) * C * Nr));
    for (int64_t panel = 0; panel < panel_count(O); ++panel) {
      const int64_t n0 = panel * Nr, cols = std::min<int64_t>(Nr, O - n0);
      float bias_panel[Nr] = {};  // zero past O
      if (epilogue.bias) std::memcpy(bias_panel, epilogue.bias + n0, sizeof(float) * cols);
      Vec bias_vectors[Nv];
      std::memcpy(bias_vectors, bias_panel, sizeof bias_vectors);
      const bool finishes = epilogue.bias || epilogue.relu;
      if constexpr (Nv == 1) {
        if (g.KW == 3 && n_taps <= group) {  // the whole panel in L1: all taps in one block
          const Block3WideFn block3 = conv_block_3wide_for(rows);
          const Vec(*last)[1] = finishes ? &bias_vectors : nullptr;
          for (int64_t m = m0; m < m1; ++m)
            for (int64_t x0 = 0; x0 < Wo; x0 += rows)
              block3(row_window(m) + x0 * C, C, g.Wp() * C, g.KH, packed + panel * K * Nr, y + (m * Wo + x0) * O + n0,
                     O, std::min<int64_t>(rows, Wo - x0), cols, last, epilogue.relu);
          continue;
        }
      }
      for (int64_t t0 = 0; t0 < n_taps; t0 += group) {
        const Vec(*last)[Nv] = finishes && t0 + group >= n_taps ? &bias_vectors : nullptr;
        for (int64_t m = m0; m < m1; ++m)
          for (int64_t x0 = 0; x0 < Wo; x0 += rows)
            block(row_window(m) + x0 * C, C, taps + t0, std::min(group, n_taps - t0),
                  packed + (panel * K + t0 * C) * Nr, y + (m * Wo + x0) * O + n0, O, std::min<int64_t>(rows, Wo - x0),
                  cols, t0 > 0, last, epilogue.relu);
      }
    }
  }
};

// Narrow channel counts on planes. With fewer output channels than a vector has lanes
// (LeNet's 6, or the input gradient of a layer from 6 channels) the panels above fill 6
// lanes in 16, and with one input channel (a grayscale first layer) the kernel gradient's
// blocks of input channels hold one row in 4. These convolutions run on planes instead:
// the padded input transposed to (B, C, Hp, Wp), and a vector holds kLanes consecutive
// positions q = y * Wp + x of an output grid Ho x Wp (the Wp - Wo last of each row are
// computed and dropped), so that tap (ky, kx) reads a plane at q + ky * Wp + kx and each
// weight is a broadcast. A valid position's window lies inside its plane; a dropped one
// reads on into the next row or plane, and past the last plane into zeroed slack.

// Floats after the last plane: a block of positions starts below Ho * Wp and reads up to
// kPlanarRows vectors on, from offsets up to (KH - 1) * Wp + KW - 1 (inside the plane).
constexpr int64_t kPlanarRows = 4;
int64_t plane_slack(const Geometry& g) { return aligned(kPlanarRows * kLanes + g.KW + kLanes); }

// Where planes win (2-core Intel Xeon, B=128 unless said): the forward to 5-15 channels
// (LeNet's 28x28 1->6 5x5: 0.46 ms against 1.13 on panels; its second layer's input
// gradient, 10x10 16->6 padded 4: 0.87 against 2.18); the kernel gradient of one input
// channel (the same 1->6: 0.66 against 2.43 ms; a B=64 28x28 1->16 3x3 layer, fwd+bwd,
// 0.65 against 0.85) or of up to 8 outputs (B=64 28x28 16->8 3x3 layer 2.79 against 3.16),
// but not of 12 (14x14 32->12 3x3 layer 1.79 against 1.52) nor 14x14 6->16 5x5 (0.78
// against 0.49), whose panels are full enough.
bool planar_forward(const Geometry& g) { return g.O > kNarrow && g.O < kLanes; }
bool planar_kernel_grad(const Geometry& g) { return g.C == 1 || (g.O > kNarrow && g.O <= 8); }

// An NHWC image of H x W pixels and C channels as `count` planes of `plane` floats each
// (count >= C), pixel (y, x) of channel c at out[c * plane + at + y * Wp + x]; all else zero.
void to_planes(const float* image, int64_t H, int64_t W, int64_t C, int64_t Wp, int64_t at, int64_t plane,
               int64_t count, float* out) {
  std::fill(out, out + count * plane, 0.0f);
  for (int64_t y = 0; y < H; ++y) {
    const float* row = image + y * W * C;
    for (int64_t px = 0; px < W; ++px)
      for (int64_t c = 0; c < C; ++c) out[c * plane + at + y * Wp + px] = row[px * C + c];
  }
}

// The padded input as planes (B, C, Hp, Wp), written an image per item.
struct Planes {
  Geometry g;
  float* planes;  // size() floats

  int64_t plane() const { return g.Hp() * g.Wp(); }
  int64_t size() const { return aligned(g.B * g.C * plane() + plane_slack(g)); }
  int64_t fill_items() const { return g.B; }

  void fill(const float* x, int64_t b) const {
    const int64_t C = g.C;
    to_planes(x + b * g.H * g.W * C, g.H, g.W, C, g.Wp(), g.pt * g.Wp() + g.pl, plane(), C, planes + b * C * plane());
    if (b == g.B - 1) std::fill(planes + g.B * C * plane(), planes + size(), 0.0f);
  }

  const float* at(int64_t b, int64_t c) const { return planes + (b * g.C + c) * plane(); }
};

// Output channels in groups of up to 8, each group's accumulators Og x R vectors.
constexpr int64_t kPlanarGroup = 8;
int64_t planar_groups(int64_t O) { return (O + kPlanarGroup - 1) / kPlanarGroup; }
// Group i of n: channels [O * i / n, O * (i + 1) / n), so that 12 splits 6 + 6.
int64_t group_start(int64_t O, int64_t i, int64_t n) { return O * i / n; }

inline Vec load_vec(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Og x R accumulators: R vectors of positions by Og output channels, over every input
// channel and tap; in points at channel 0's plane at the block's first position, w at the
// group's weights (C, taps, Og). The sums go to tile (Og, R * kLanes).
template <int Og, int R>
void planar_block(const float* in, int64_t plane, int64_t C, const int64_t* taps, int64_t n_taps, const float* w,
                  const float* bias, bool relu, float* tile) {
  Vec acc[Og][R] = {};
  for (int64_t c = 0; c < C; ++c) {
    const float* p = in + c * plane;
    for (int64_t t = 0; t < n_taps; ++t, w += Og) {
      Vec v[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) v[r] = load_vec(p + taps[t] + r * kLanes);
#pragma GCC unroll 8
      for (int o = 0; o < Og; ++o)
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[o][r] += w[o] * v[r];
    }
  }
  const Vec zero = {};
  for (int o = 0; o < Og; ++o)
    for (int r = 0; r < R; ++r) {
      acc[o][r] += bias[o];
      if (relu) acc[o][r] = acc[o][r] < zero ? zero : acc[o][r];
      std::memcpy(tile + o * R * kLanes + r * kLanes, &acc[o][r], sizeof(Vec));
    }
}

// Positions [0, count) of a tile (Og, block) to `count` consecutive outputs (row stride O).
template <int Og>
void planar_store(const float* tile, int64_t block, int64_t count, float* out, int64_t O) {
  for (int64_t j = 0; j < count; ++j)
#pragma GCC unroll 8
    for (int o = 0; o < Og; ++o) out[j * O + o] = tile[o * block + j];
}

using PlanarBlockFn = void (*)(const float*, int64_t, int64_t, const int64_t*, int64_t, const float*, const float*,
                               bool, float*);
using PlanarStoreFn = void (*)(const float*, int64_t, int64_t, float*, int64_t);

// Og accumulator rows by the most vectors of positions that fit the registers with them.
constexpr int planar_rows(int Og) { return Og <= 6 ? 4 : 3; }

template <int Og>
constexpr PlanarBlockFn planar_block_fn() {
  return planar_block<Og, planar_rows(Og)>;
}

PlanarBlockFn planar_block_for(int64_t Og) {
  constexpr PlanarBlockFn fns[] = {planar_block_fn<1>(), planar_block_fn<2>(), planar_block_fn<3>(),
                                   planar_block_fn<4>(), planar_block_fn<5>(), planar_block_fn<6>(),
                                   planar_block_fn<7>(), planar_block_fn<8>()};
  return fns[Og - 1];
}

PlanarStoreFn planar_store_for(int64_t Og) {
  constexpr PlanarStoreFn fns[] = {planar_store<1>, planar_store<2>, planar_store<3>, planar_store<4>,
                                   planar_store<5>, planar_store<6>, planar_store<7>, planar_store<8>};
  return fns[Og - 1];
}

// The forward on planes: `Planes` items, then one packing the weights, then blocks of
// positions, kPositions per item.
struct PlanarConv {
  Geometry g;
  Planes in;
  float* weights;  // weight_size() floats: per group (C, taps, Og)
  Epilogue epilogue;

  static constexpr int64_t kPositions = 768;  // a multiple of 3 and 4 vectors of 16 lanes
  int64_t positions() const { return g.Ho() * g.Wp(); }
  int64_t items_per_image() const { return (positions() + kPositions - 1) / kPositions; }
  int64_t run_items() const { return g.B * items_per_image(); }
  int64_t weight_size() const { return aligned(g.K() * g.O); }

  void pack(const float* kernel) const {
    const int64_t n = planar_groups(g.O), taps = g.KH * g.KW;
    float* out = weights;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t o0 = group_start(g.O, i, n), og = group_start(g.O, i + 1, n) - o0;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t o = 0; o < og; ++o) *out++ = kernel[(t * g.C + c) * g.O + o0 + o];
    }
  }

  void run(float* y, int64_t item) const {
    const int64_t b = item / items_per_image(), q0 = item % items_per_image() * kPositions;
    const int64_t q1 = std::min(q0 + kPositions, positions()), Wp = g.Wp(), Wo = g.Wo(), O = g.O;
    const int64_t n_taps = g.KH * g.KW, n = planar_groups(O);
    int64_t taps[64];
    for (int64_t ky = 0; ky < g.KH; ++ky)
      for (int64_t kx = 0; kx < g.KW; ++kx) taps[ky * g.KW + kx] = ky * Wp + kx;
    alignas(64) float tile[kPlanarGroup * kPlanarRows * kLanes];
    const float* w = weights;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t o0 = group_start(O, i, n), og = group_start(O, i + 1, n) - o0;
      const int64_t block = planar_rows(og) * kLanes;
      const PlanarBlockFn compute = planar_block_for(og);
      const PlanarStoreFn store = planar_store_for(og);
      float bias[kPlanarGroup] = {};
      if (epilogue.bias) std::copy(epilogue.bias + o0, epilogue.bias + o0 + og, bias);
      for (int64_t q = q0; q < q1; q += block) {
        compute(in.at(b, 0) + q, in.plane(), g.C, taps, n_taps, w, bias, epilogue.relu, tile);
        // The block's positions row by row: the first Wo of each row are outputs.
        for (int64_t p = q, end = std::min(q + block, q1); p < end;) {
          const int64_t row = p / Wp, col = p - row * Wp, run = std::min(end - p, Wp - col);
          if (col < Wo) store(tile + (p - q), block, std::min(run, Wo - col), y + ((b * g.Ho() + row) * Wo + col) * O + o0, O);
          p += run;
        }
      }
      w += g.C * n_taps * og;
    }
  }
};

// The kernel gradient on planes: dW[ky, kx, c, o] = sum over images and positions of the
// input plane c at q + ky * Wp + kx times dy's plane o at q, dy laid out as planes on the
// same Ho x Wp grid with zeros at the dropped positions (so they add nothing, unless what
// they read is infinite or NaN: such an input makes NaN of entries XLA's gradient may keep
// infinite). Items of kImages images each keep Tx taps of a kernel row by Og output
// channels in registers over their images' positions and add them to their partial
// (`in_order`), a vector per kernel entry; the partials and their lanes are summed at the end.
constexpr int64_t kGradTaps = 5;
// Output channels per block: 8 with up to 3 taps, 4 with more (the accumulators, a vector per
// tap and a broadcast fit the registers).
int64_t grad_channels(int64_t KW) { return KW <= 3 ? 8 : 4; }

template <int Tx, int Og>
void planar_grad_block(const float* const* in, const float* const* dy, int64_t images, int64_t dy_plane,
                       int64_t positions, Vec* partial, int64_t partial_stride) {
  Vec acc[Tx][Og] = {};
  for (int64_t i = 0; i < images; ++i)
    for (int64_t q = 0; q < positions; q += kLanes) {
      Vec v[Tx], d[Og];
#pragma GCC unroll 8
      for (int t = 0; t < Tx; ++t) v[t] = load_vec(in[i] + q + t);
#pragma GCC unroll 8
      for (int o = 0; o < Og; ++o) d[o] = load_vec(dy[i] + o * dy_plane + q);
#pragma GCC unroll 8
      for (int t = 0; t < Tx; ++t)
#pragma GCC unroll 8
        for (int o = 0; o < Og; ++o) acc[t][o] += v[t] * d[o];
    }
  for (int t = 0; t < Tx; ++t)
    for (int o = 0; o < Og; ++o) partial[t * partial_stride + o] += acc[t][o];
}

using PlanarGradFn = void (*)(const float* const*, const float* const*, int64_t, int64_t, int64_t, Vec*, int64_t);

PlanarGradFn planar_grad_block_for(int64_t taps, int64_t channels) {
  constexpr PlanarGradFn fns4[] = {planar_grad_block<1, 4>, planar_grad_block<2, 4>, planar_grad_block<3, 4>,
                                   planar_grad_block<4, 4>, planar_grad_block<5, 4>};
  constexpr PlanarGradFn fns8[] = {planar_grad_block<1, 8>, planar_grad_block<2, 8>, planar_grad_block<3, 8>};
  return channels == 8 ? fns8[taps - 1] : fns4[taps - 1];
}

struct PlanarKernelGrad {
  Geometry g;
  Planes in;
  float* dy_planes;  // dy_size() floats: (B, Op, positions rounded to vectors)
  Vec* partials;     // partial_count partials, each (KH, KW, C, Op) vectors

  static constexpr int64_t kImages = 4;
  int64_t Og() const { return grad_channels(g.KW); }
  int64_t Op() const { return (g.O + Og() - 1) / Og() * Og(); }
  int64_t dy_plane() const { return (g.Ho() * g.Wp() + kLanes - 1) / kLanes * kLanes; }
  int64_t dy_size() const { return aligned(g.B * Op() * dy_plane()); }
  int64_t partial_vectors() const { return g.K() * Op(); }
  int64_t sum_items() const { return (g.B + kImages - 1) / kImages; }
  static constexpr int64_t kReduceItem = 1024;
  int64_t reduce_items() const { return (g.K() * g.O + kReduceItem - 1) / kReduceItem; }

  void fill_dy(const float* dy, int64_t b) const {
    const int64_t Ho = g.Ho(), Wo = g.Wo(), O = g.O;
    to_planes(dy + b * Ho * Wo * O, Ho, Wo, O, g.Wp(), 0, dy_plane(), Op(), dy_planes + b * Op() * dy_plane());
  }

  void sum(int64_t item, int64_t part) const {
    const int64_t b0 = item * kImages, images = std::min(kImages, g.B - b0), C = g.C, KW = g.KW;
    Vec* partial = partials + part * partial_vectors();
    const float* in_rows[kImages];
    const float* dy_rows[kImages];
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ky = 0; ky < g.KH; ++ky)
        for (int64_t kx = 0; kx < KW; kx += kGradTaps) {
          const int64_t taps = std::min(kGradTaps, KW - kx);
          for (int64_t o = 0; o < Op(); o += Og()) {
            for (int64_t i = 0; i < images; ++i) {
              in_rows[i] = in.at(b0 + i, c) + ky * g.Wp() + kx;
              dy_rows[i] = dy_planes + ((b0 + i) * Op() + o) * dy_plane();
            }
            planar_grad_block_for(taps, Og())(in_rows, dy_rows, images, dy_plane(), dy_plane(),
                                        partial + ((ky * KW + kx) * C + c) * Op() + o, C * Op());
          }
        }
  }

  void reduce(float* dkernel, int64_t parts, int64_t item) const {
    const int64_t i0 = item * kReduceItem, i1 = std::min(i0 + kReduceItem, g.K() * g.O);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = i % g.O, tc = i / g.O;  // (tap, c), then o
      Vec total = {};
      for (int64_t t = 0; t < parts; ++t) total += partials[t * partial_vectors() + tc * Op() + o];
      dkernel[i] = lane_sum(total);
    }
  }
};

ffi::Error check_kernel(ffi::Span<const int64_t> k) {
  if (k.size() != 4) return ffi::Error::InvalidArgument("zoo conv: kernel must be (KH, KW, C, O)");
  if (k[0] * k[1] > 64) return ffi::Error::InvalidArgument("zoo conv: kernels up to 64 taps");
  return ffi::Error::Success();
}

ffi::Error check_output(ffi::Span<const int64_t> d, const Geometry& g, const char* message) {
  if (d.size() != 4 || d[0] != g.B || d[1] != g.Ho() || d[2] != g.Wo() || d[3] != g.O)
    return ffi::Error::InvalidArgument(message);
  return ffi::Error::Success();
}

ffi::Error ConvForwardImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> kernel,
                           ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y, int64_t pad_top,
                           int64_t pad_bottom, int64_t pad_left, int64_t pad_right, bool relu) {
  auto k = kernel.dimensions();
  if (auto e = check_kernel(k); e.failure()) return e;
  Geometry g;
  if (auto e = geometry(x, k[0], k[1], k[2], k[3], pad_top, pad_bottom, pad_left, pad_right, &g); e.failure())
    return e;
  if (auto e = check_output(y->dimensions(), g, "zoo conv: output must be (B, Ho, Wo, O)"); e.failure()) return e;
  const auto b = bias.dimensions();
  if (b.size() != 1 || (b[0] != 0 && b[0] != g.O))
    return ffi::Error::InvalidArgument("zoo conv: bias must be (O,), or (0,) for none");
  const Epilogue epilogue{b[0] ? bias.typed_data() : nullptr, relu};
  const int helpers = helper_count(pool, flops(g) / 2);
  WorkspaceLease workspace;
  if (planar_forward(g)) {
    PlanarConv conv{g, {g, nullptr}, nullptr, epilogue};
    conv.in.planes = workspace.worker(0, conv.in.size() + conv.weight_size());
    conv.weights = conv.in.planes + conv.in.size();
    run_phases(pool, helpers, {conv.in.fill_items() + 1, conv.run_items()}, [&](int phase, int64_t item, int) {
      if (phase == 1) return conv.run(y->typed_data(), item);
      if (item < conv.in.fill_items()) return conv.in.fill(x.typed_data(), item);
      conv.pack(kernel.typed_data());
    });
    return ffi::Error::Success();
  }
  float* buffer = workspace.worker(0, padded_size(g) + packed_size(g));
  const Conv conv{g, buffer, buffer + padded_size(g), epilogue};
  run_phases(pool, helpers, {conv.prepare_items(), conv.run_items()},
             [&](int phase, int64_t item, int) {
               if (phase == 0)
                 conv.prepare(x.typed_data(), kernel.typed_data(), item);
               else
                 conv.run(y->typed_data(), item);
             });
  return ffi::Error::Success();
}

// The kernel gradient of one tap, a block of Rows input channels by one panel of output
// channels, accumulated over `n` output rows of X pixels into dw (row stride O): a[j]
// points at row j's first pixel's channels in the padded input (pixels C apart), g[j] at
// its output gradient (pixels ldg apart).
template <int Rows, int Nv>
void kernel_grad_block(const float* const* a, const float* const* g, int64_t n, int64_t C, int64_t ldg, int64_t X,
                       float* dw, int64_t O, int64_t rows, int64_t cols) {
  Vec acc[Rows][Nv];
  load<Rows, Nv>(acc, dw, O, rows, cols);
  for (int64_t j = 0; j < n; ++j) multiply_add<Rows, Nv>(acc, a[j], 1, C, g[j], ldg, X);
  store<Rows, Nv>(acc, dw, O, rows, cols);
}

// The kernel gradient of a narrow convolution for one tap and up to one vector of input
// channels, accumulated over n rows of X pixels into dw (channel stride O): per output
// channel a vector over the input channels. a[j] and g[j] as for kernel_grad_block.
template <int O>
void kernel_grad_narrow_block(const float* const* a, const float* const* g, int64_t n, int64_t C, int64_t X,
                              float* dw, int64_t channels) {
  Vec acc[O] = {};
  for (int64_t j = 0; j < n; ++j) {
    const float* aj = a[j];
    const float* gj = g[j];
    for (int64_t x = 0; x < X; ++x) {
      Vec xv;
      std::memcpy(&xv, aj + x * C, sizeof xv);
      for (int o = 0; o < O; ++o) acc[o] += xv * gj[x * O + o];
    }
  }
  for (int o = 0; o < O; ++o) {
    float lanes[kLanes];
    std::memcpy(lanes, &acc[o], sizeof lanes);
    for (int64_t c = 0; c < channels; ++c) dw[c * O + o] += lanes[c];
  }
}

template <int Nv>
using GradFn = void (*)(const float* const*, const float* const*, int64_t, int64_t, int64_t, int64_t, float*,
                        int64_t, int64_t, int64_t);

template <int Nv>
GradFn<Nv> kernel_grad_block_for(int rows) {
  switch (rows) {
    case 16: return kernel_grad_block<16, Nv>;
    case 12: return kernel_grad_block<12, Nv>;
    case 8: return kernel_grad_block<8, Nv>;
    default: return kernel_grad_block<4, Nv>;
  }
}

// The kernel gradient, the sum over pixels of the padded input's window times the output
// gradient, read from a `Conv`'s padded input of the same x and padding: each item adds
// a chunk of output rows into its (KH, KW, C, O) partial (`in_order`); then items add up
// the partials.
struct KernelGrad {
  Geometry g;
  const float* padded;
  float* dy_wide;   // dy in rows of ldg() floats, where O is not a whole number of panels
  float* partials;  // partial_count (KH*KW*C*O) partials

  // A block's last panel reads whole panels of the output gradient.
  int64_t ldg() const { return narrow(g.O) ? g.O : panel_count(g.O) * panel_width(g.O); }
  bool copies_dy() const { return ldg() != g.O; }
  int64_t dy_size() const { return copies_dy() ? aligned(g.B * g.Ho() * g.Wo() * ldg()) : 0; }
  int64_t count() const { return g.K() * g.O; }      // a kernel's floats
  int64_t size() const { return aligned(count()); }  // a partial's, to the next cache line

  // Output rows in chunks whose input and gradient stay in cache for every tap and block;
  // a block accumulates a whole chunk in registers.
  static constexpr int64_t kChunk = 16;
  int64_t copy_items() const { return copies_dy() ? items(g.B * g.Ho(), kRowsPerItem) : 0; }
  int64_t sum_items() const { return items(g.B * g.Ho(), kChunk); }
  static constexpr int64_t kReduceItem = 4096;
  int64_t reduce_items() const { return items(count(), kReduceItem); }

  void copy_dy(const float* dy, int64_t item) const {
    const int64_t Wo = g.Wo(), O = g.O, ld = ldg();
    const int64_t m0 = item * kRowsPerItem, m1 = std::min(m0 + kRowsPerItem, g.B * g.Ho());
    for (int64_t px = m0 * Wo; px < m1 * Wo; ++px) {
      std::memcpy(dy_wide + px * ld, dy + px * O, sizeof(float) * O);
      std::fill(dy_wide + px * ld + O, dy_wide + (px + 1) * ld, 0.0f);
    }
  }

  void sum(const float* dy, int64_t item, int64_t part) const {
    const int64_t m0 = item * kChunk, m1 = std::min(m0 + kChunk, g.B * g.Ho());
    float* partial = partials + part * size();
    const float* grad = copies_dy() ? dy_wide : dy;
    switch (narrow(g.O) ? g.O : 0) {
      case 1: return sum_narrow<1>(grad, partial, m0, m1);
      case 2: return sum_narrow<2>(grad, partial, m0, m1);
      case 3: return sum_narrow<3>(grad, partial, m0, m1);
      case 4: return sum_narrow<4>(grad, partial, m0, m1);
      default: return panel_vectors(g.O) == 2 ? sum_rows<2>(grad, partial, m0, m1) : sum_rows<1>(grad, partial, m0, m1);
    }
  }

  // Row m's window at tap (ky, kx), from channel ch.
  const float* window(int64_t m, int64_t ky, int64_t kx, int64_t ch) const {
    return padded + (((m / g.Ho()) * g.Hp() + m % g.Ho() + ky) * g.Wp() + kx) * g.C + ch;
  }

  template <int O>
  void sum_narrow(const float* grad, float* dw, int64_t m0, int64_t m1) const {
    const float* a[kChunk];
    const float* gr[kChunk];
    for (int64_t m = m0; m < m1; ++m) gr[m - m0] = grad + m * g.Wo() * O;
    for (int64_t ky = 0; ky < g.KH; ++ky)
      for (int64_t kx = 0; kx < g.KW; ++kx)
        for (int64_t ch = 0; ch < g.C; ch += kLanes) {
          for (int64_t m = m0; m < m1; ++m) a[m - m0] = window(m, ky, kx, ch);
          kernel_grad_narrow_block<O>(a, gr, m1 - m0, g.C, g.Wo(), dw + ((ky * g.KW + kx) * g.C + ch) * O,
                                      std::min<int64_t>(kLanes, g.C - ch));
        }
  }

  template <int Nv>
  void sum_rows(const float* grad, float* dw, int64_t m0, int64_t m1) const {
    constexpr int Nr = Nv * kLanes;
    const int64_t Wo = g.Wo(), C = g.C, O = g.O, ld = ldg();
    const int rows = block_rows(C, Nv == 1 ? kMaxRows1 : kMaxRows2);
    const GradFn<Nv> block = kernel_grad_block_for<Nv>(rows);
    const float* a[kChunk];
    const float* gr[kChunk];
    for (int64_t ky = 0; ky < g.KH; ++ky)
      for (int64_t kx = 0; kx < g.KW; ++kx)
        for (int64_t ch = 0; ch < C; ch += rows)
          for (int64_t n0 = 0; n0 < O; n0 += Nr) {
            for (int64_t m = m0; m < m1; ++m) {
              a[m - m0] = window(m, ky, kx, ch);
              gr[m - m0] = grad + m * Wo * ld + n0;
            }
            block(a, gr, m1 - m0, C, ld, Wo, dw + ((ky * g.KW + kx) * C + ch) * O + n0, O,
                  std::min<int64_t>(rows, C - ch), std::min<int64_t>(Nr, O - n0));
          }
  }

  void reduce(float* dkernel, int64_t parts, int64_t item) const {
    const int64_t i0 = item * kReduceItem, i1 = std::min(i0 + kReduceItem, count());
    std::memcpy(dkernel + i0, partials + i0, sizeof(float) * (i1 - i0));
    for (int64_t t = 1; t < parts; ++t)
      for (int64_t i = i0; i < i1; ++i) dkernel[i] += partials[t * size() + i];
  }
};

// x (B, H, W, C), dy (B, Ho, Wo, O) -> dkernel (KH, KW, C, O), the padding the forward's.
// (The input's gradient is a ZooConvForward call of dy with the flipped kernel; a call of
// its own, so that XLA drops it where nothing uses it, as for the first layer.)
ffi::Error ConvKernelGradImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> dy,
                              ffi::ResultBuffer<ffi::F32> dkernel, int64_t pad_top, int64_t pad_bottom,
                              int64_t pad_left, int64_t pad_right) {
  auto k = dkernel->dimensions();
  if (auto e = check_kernel(k); e.failure()) return e;
  Geometry g;
  if (auto e = geometry(x, k[0], k[1], k[2], k[3], pad_top, pad_bottom, pad_left, pad_right, &g); e.failure())
    return e;
  if (auto e = check_output(dy.dimensions(), g, "zoo conv: output gradient must be (B, Ho, Wo, O)"); e.failure())
    return e;
  const int helpers = helper_count(pool, flops(g) / 2);
  WorkspaceLease workspace;
  if (planar_kernel_grad(g)) {
    PlanarKernelGrad grad{g, {g, nullptr}, nullptr, nullptr};
    const int64_t parts = partial_count(grad.sum_items());
    grad.in.planes = workspace.worker(0, grad.in.size() + grad.dy_size() + parts * grad.partial_vectors() * kLanes);
    grad.dy_planes = grad.in.planes + grad.in.size();
    grad.partials = reinterpret_cast<Vec*>(grad.dy_planes + grad.dy_size());
    run_phases(pool, helpers, {2 * g.B + parts, parts, grad.reduce_items()}, [&](int phase, int64_t item, int) {
      if (phase == 1) return in_order(grad.sum_items(), item, parts, [&](int64_t i) { grad.sum(i, item); });
      if (phase == 2) return grad.reduce(dkernel->typed_data(), parts, item);
      if (item < g.B) return grad.in.fill(x.typed_data(), item);
      if (item < 2 * g.B) return grad.fill_dy(dy.typed_data(), item - g.B);
      Vec* partial = grad.partials + (item - 2 * g.B) * grad.partial_vectors();
      std::fill(partial, partial + grad.partial_vectors(), Vec{});
    });
    return ffi::Error::Success();
  }
  KernelGrad grad{g, nullptr, nullptr, nullptr};
  const int64_t parts = partial_count(grad.sum_items());
  float* buffer = workspace.worker(0, padded_size(g) + grad.dy_size() + parts * grad.size());
  const Conv input{g, buffer, nullptr};  // pads x; no kernel to pack
  grad.padded = buffer;
  grad.dy_wide = buffer + padded_size(g);
  grad.partials = grad.dy_wide + grad.dy_size();
  run_phases(pool, helpers, {input.pad_items() + grad.copy_items() + parts, parts, grad.reduce_items()},
             [&](int phase, int64_t item, int) {
               if (phase == 0) {
                 if (item < input.pad_items()) return input.pad(x.typed_data(), item);
                 item -= input.pad_items();
                 if (item < grad.copy_items()) return grad.copy_dy(dy.typed_data(), item);
                 item -= grad.copy_items();
                 std::fill(grad.partials + item * grad.size(), grad.partials + (item + 1) * grad.size(), 0.0f);
               } else if (phase == 1) {
                 in_order(grad.sum_items(), item, parts, [&](int64_t i) { grad.sum(dy.typed_data(), i, item); });
               } else {
                 grad.reduce(dkernel->typed_data(), parts, item);
               }
             });
  return ffi::Error::Success();
}

}  // namespace

// Both calls: two NHWC/HWIO operands ((x, kernel) forward, (x, dy) for the kernel's
// gradient), [the forward's bias], one out, the forward's padding [and its ReLU flag].
auto operands() {
  return ffi::Ffi::Bind().Ctx<ffi::ThreadPool>().Arg<ffi::Buffer<ffi::F32>>().Arg<ffi::Buffer<ffi::F32>>();
}

auto forward_binding() {
  return with_padding(operands().Arg<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>()).Attr<bool>("relu");
}

auto kernel_grad_binding() { return with_padding(operands().Ret<ffi::Buffer<ffi::F32>>()); }

XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooConvForward, ConvForwardImpl, forward_binding());  // x, kernel, bias -> y
XLA_FFI_DEFINE_HANDLER_SYMBOL(ZooConvKernelGrad, ConvKernelGradImpl, kernel_grad_binding());  // x, dy -> dkernel
