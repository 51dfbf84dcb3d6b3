// What zoo's CPU kernels share (zoo.native): the BLAS handed over at load, vectors of the
// CPU's width, worker threads and reusable buffers.

#pragma once

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace zoo_native {

// cblas_sgemm with 32-bit integers; the enums are CBLAS's values.
using Sgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                       int lda, const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
inline Sgemm sgemm = nullptr;

// Vectors of the CPU's width, written with GCC's vector extensions.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8;
#else
constexpr int kLanes = 4;
#endif
using Vec = float __attribute__((vector_size(kLanes * sizeof(float))));

// Threads: the cores this process may use, or ZOO_NATIVE_THREADS. The kernels share their
// work among threads of their own (the RNNs) or XLA's (the convolution), so BLAS runs
// single-threaded (zoo.native sets it).
inline int cpu_count() {
  if (const char* env = std::getenv("ZOO_NATIVE_THREADS")) return std::max(1, std::atoi(env));
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

// Workers for `units` independent slices of work, each at least `grain` long.
inline int worker_count(int64_t units, int64_t grain) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(cpu_count(), units / grain)));
}

// Workers wait here once per step: they spin briefly, then yield the core, so an
// oversubscribed machine does not starve the worker being waited for.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    if (n_ == 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins)
      if (spins > 4000) std::this_thread::yield();
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// fn(worker) on `workers` threads, this one included.
template <typename Fn>
void run_workers(int workers, Fn fn) {
  std::vector<std::thread> threads;
  for (int p = 1; p < workers; ++p) threads.emplace_back(fn, p);
  fn(0);
  for (auto& thread : threads) thread.join();
}

// [begin, end) of `count` items for worker p of n.
inline std::pair<int64_t, int64_t> share(int64_t count, int p, int n) { return {count * p / n, count * (p + 1) / n}; }

// Items of work in phases, on the calling thread and up to `helpers` tasks on XLA's
// intra-op thread pool (the threads XLA runs its own operations on, so the two never
// oversubscribe the cores). Whichever thread runs claims the next item: a thread that is
// held up delays only the item it holds. Every item of a phase is done before any item
// of the next starts. fn(phase, item, slot), slot in [0, helpers] naming the thread, for
// per-thread buffers. A task that starts after the work is done claims nothing.
template <typename Fn>
void run_phases(ffi::ThreadPool& pool, int helpers, std::vector<int64_t> counts, Fn fn) {
  struct State {
    State(std::vector<int64_t> c, Fn f)
        : counts(std::move(c)), fn(std::move(f)), next(counts.size()), done(counts.size()) {}
    std::vector<int64_t> counts;
    Fn fn;
    std::vector<std::atomic<int64_t>> next, done;
    std::atomic<int> slots{0};
  };
  const size_t phases = counts.size();
  auto state = std::make_shared<State>(std::move(counts), std::move(fn));
  for (size_t ph = 0; ph < phases; ++ph) state->next[ph].store(0), state->done[ph].store(0);
  auto work = [state, phases] {
    const int slot = state->slots.fetch_add(1);
    for (size_t ph = 0; ph < phases; ++ph) {
      const int64_t n = state->counts[ph];
      for (int64_t i; (i = state->next[ph].fetch_add(1, std::memory_order_relaxed)) < n;) {
        state->fn(static_cast<int>(ph), i, slot);
        state->done[ph].fetch_add(1, std::memory_order_release);
      }
      for (int spins = 0; state->done[ph].load(std::memory_order_acquire) < n; ++spins)
        if (spins > 4000) std::this_thread::yield();
    }
  };
  for (int h = 0; h < helpers; ++h) pool.Schedule([work] { work(); });
  work();
}

// Helper tasks for a call of `work` multiply-adds: one thread per 2^20 (a task costs
// microseconds), at most the pool's threads and the cores (ZOO_NATIVE_THREADS) less one.
inline int helper_count(ffi::ThreadPool& pool, int64_t work) {
  const int64_t threads = std::min<int64_t>(pool.num_threads(), cpu_count());
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(threads, work >> 20) - 1));
}

// Buffers in one workspace start on cache lines (64 bytes, 16 floats): `aligned` rounds a
// buffer's size up to them.
inline int64_t aligned(int64_t floats) { return (floats + 15) / 16 * 16; }

// Buffers reused by later calls, so their pages are touched once per process. A call
// takes a workspace for itself; concurrent calls (two directions of an RNN) take two.
// 64-byte aligned, as a cache line: a vector load that straddles two lines costs two
// (the convolution ran a third slower in a process whose buffers happened to be unaligned).
template <typename T>
struct CacheAligned {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAligned() = default;
  template <typename U>
  CacheAligned(const CacheAligned<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheAligned<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheAligned<U>&) const { return false; }
};

struct Workspace {
  std::vector<std::vector<float, CacheAligned<float>>> per_worker;
};
inline std::mutex workspace_mutex;
inline std::vector<std::unique_ptr<Workspace>> idle_workspaces;

class WorkspaceLease {
 public:
  WorkspaceLease() {
    std::lock_guard<std::mutex> lock(workspace_mutex);
    if (idle_workspaces.empty()) {
      ws_ = std::make_unique<Workspace>();
    } else {
      ws_ = std::move(idle_workspaces.back());
      idle_workspaces.pop_back();
    }
  }
  ~WorkspaceLease() {
    std::lock_guard<std::mutex> lock(workspace_mutex);
    idle_workspaces.push_back(std::move(ws_));
  }
  float* worker(int p, size_t count) {
    if (ws_->per_worker.size() <= static_cast<size_t>(p)) ws_->per_worker.resize(p + 1);
    auto& v = ws_->per_worker[p];
    if (v.size() < count) v.resize(count);
    return v.data();
  }

 private:
  std::unique_ptr<Workspace> ws_;
};

// A convolution's binding with its padding attributes, as zoo.native passes them.
template <typename Binding>
auto with_padding(Binding binding) {
  return std::move(binding)
      .template Attr<int64_t>("pad_top")
      .template Attr<int64_t>("pad_bottom")
      .template Attr<int64_t>("pad_left")
      .template Attr<int64_t>("pad_right");
}

// Every handler's first check: zoo.native hands over OpenBLAS's sgemm when it loads the library.
inline ffi::Error sgemm_ready() {
  if (sgemm == nullptr) return ffi::Error::Internal("zoo.native: no sgemm was set (zoo.native sets it at load)");
  return ffi::Error::Success();
}

}  // namespace zoo_native
