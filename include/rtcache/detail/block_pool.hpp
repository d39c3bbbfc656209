#pragma once

/// \file
/// Memory for one shard's entries.

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "macros.hpp"

#if defined(RTCACHE_ASAN) && __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#define RTCACHE_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RTCACHE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RTCACHE_POISON(p, n) ((void)(p), (void)(n))
#define RTCACHE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rtcache::detail {

/// Blocks of one size, carved from chunks that the pool allocates (each
/// twice the size of the one before, from 16 blocks up to 1024) and kept on
/// a free list once freed, for the next block asked for.
///
/// Against one allocation per entry, a block carries no allocator header
/// and rounding (8 to 24 bytes with glibc), entries made one after another
/// sit next to each other, and blocks of 64 bytes start a cache line, so a
/// hit on such an entry reads one line. The cost: memory comes back to the
/// allocator only when the pool is destroyed (with the cache), so a shard
/// keeps the blocks of the most entries it ever held at once.
///
/// Not thread-safe: a shard's pool is used under the shard's lock. Under
/// AddressSanitizer, blocks are poisoned while free, so a use after free is
/// still reported.
class BlockPool {
 public:
  /// Blocks of `size` bytes (at least a pointer's), aligned to `align` (a
  /// power of two).
  BlockPool(std::size_t size, std::size_t align)
      : align_(std::max({align, alignof(FreeBlock), kLine})),
        stride_(round_up(std::max(size, sizeof(FreeBlock)), std::max(align, alignof(FreeBlock)))) {}

  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  ~BlockPool() {
    for (const Chunk& c : chunks_) {
      RTCACHE_UNPOISON(c.memory, c.bytes);
      ::operator delete (c.memory, c.bytes, std::align_val_t{align_});
    }
  }

  /// An uninitialized block. May throw `std::bad_alloc`, changing nothing.
  [[nodiscard]] void* allocate() {
    void* block = free_;
    if (block != nullptr) {
      RTCACHE_UNPOISON(block, stride_);
      free_ = free_->next;
    } else {
      if (next_ == end_) add_chunk();
      block = std::exchange(next_, next_ + stride_);
      RTCACHE_UNPOISON(block, stride_);
    }
    ++handed_out_;
    return block;
  }

  /// Takes back a block of this pool, whose object was destroyed.
  void deallocate(void* block) noexcept {
    free_ = ::new (block) FreeBlock{free_};
    RTCACHE_POISON(block, stride_);
  }

  /// The bytes between two blocks of a chunk.
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }

  /// The blocks handed out so far, freed or not.
  [[nodiscard]] std::size_t handed_out() const noexcept { return handed_out_; }

  /// The bytes of all chunks.
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const Chunk& c : chunks_) total += c.bytes;
    return total;
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  struct Chunk {
    void* memory;
    std::size_t bytes;
  };

  static constexpr std::size_t kLine = 64;
  static constexpr std::size_t kFirstChunkBlocks = 16;
  static constexpr std::size_t kMaxChunkBlocks = 1024;

  static constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
  }

  void add_chunk() {
    const std::size_t blocks = chunks_.empty()
                                   ? kFirstChunkBlocks
                                   : std::min(2 * chunks_.back().bytes / stride_, kMaxChunkBlocks);
    const std::size_t bytes = blocks * stride_;
    if (chunks_.size() == chunks_.capacity()) {
      chunks_.reserve(2 * chunks_.size() + 4);  // so that push_back cannot throw below
    }
    void* memory = ::operator new (bytes, std::align_val_t{align_});
    chunks_.push_back(Chunk{memory, bytes});
    RTCACHE_POISON(memory, bytes);
    next_ = static_cast<char*>(memory);
    end_ = next_ + bytes;
  }

  std::size_t align_;   // of each chunk: blocks of a line's size start lines
  std::size_t stride_;  // the block size, rounded up to the blocks' alignment
  std::size_t handed_out_ = 0;
  FreeBlock* free_ = nullptr;
  char* next_ = nullptr;  // the current chunk's first block never handed out
  char* end_ = nullptr;
  std::vector<Chunk> chunks_;
};

}  // namespace rtcache::detail
