#pragma once

/// \file
/// Adaptive W-TinyLFU eviction.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "../detail/entry.hpp"
#include "../detail/frequency_sketch.hpp"
#include "../detail/hash.hpp"
#include "../detail/intrusive_list.hpp"
#include "../detail/prefetch.hpp"
#include "../detail/striped_counters.hpp"

namespace rtcache::policy {

/// W-TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache
/// Admission Policy", ACM TOS 2017), with the window size adapted by hill
/// climbing (Einziger, Eytan, Friedman and Manes, "Adaptive Software Cache
/// Management", Middleware 2018), as in Caffeine since version 2.7.
///
/// New entries enter a small LRU *admission window* (1% of the capacity at
/// first, rounded down, so none below 100 entries). The rest is the *main*
/// space, a segmented LRU: a *probation* segment and a *protected* one (80% of
/// the main space) that entries reach by being hit while on probation. When
/// the window overflows, its oldest entry (with an empty window, the entry
/// just inserted) moves to probation while the main space has room (at once,
/// as in Caffeine, so that a filling cache forms its segments as it goes);
/// otherwise it becomes a candidate for the main space and competes with
/// the main space's victim, the least frequently used of the eight oldest
/// entries on probation. A count-min sketch of recent access frequencies
/// (`detail::FrequencySketch`) estimates both. A candidate used at least two
/// times more than the victim gets in. One that leads by a single use (its
/// estimate includes the miss that just brought it in) gets in only if its
/// previous use came after the victim's last use, the test of LIRS (Jiang and
/// Zhang, SIGMETRICS 2002) between a returning key's reuse distance and a
/// resident's recency: in a loop over more keys than fit, the victim is the
/// key whose turn comes next and the candidate was last used a whole loop
/// ago, so the loop keeps a stable set; keys that come back soon after a
/// first visit still displace idle residents. For that test each entry
/// carries the shard's request clock at its last use (in the hook's padding),
/// and the shard keeps a direct-mapped table of recently departed keys (four
/// 32-bit slots per entry of capacity, or of entries held with a weigher; each a 10-bit hash
/// fingerprint and the low 22 bits of the clock at the key's last use; in
/// shards of more than 4096 entries the clock is stored in coarser units, so
/// that a slot still spans over a thousand times the capacity in requests):
/// hashes only, never keys, like the sketch. So
/// one-time keys, scans and loops cannot flush the entries worth keeping,
/// while the window still serves bursts.
///
/// The best window size depends on the workload: large for recency-biased
/// traffic, tiny for frequency-biased traffic and loops. Every sample period
/// (ten requests per entry of capacity, and at least 4000, so that small
/// caches do not chase noise) the shard compares its hit ratio with the
/// previous period's and moves the window size one step (6.25% of the
/// capacity) in the direction that helped, reversing when the hit ratio
/// drops; the step decays while the hit ratio is stable and is reset when it
/// changes sharply.
///
/// A candidate that wins neither way is normally rejected,
/// which an attacker could exploit by making a victim look hot with colliding
/// keys. So a candidate whose own estimate is moderately high (6 or more) is
/// admitted with a probability of 1/128, from a generator seeded per cache
/// (and so reproducible in tests).
///
/// Departures from Caffeine, each measured on the traces of `docs/hit-ratio.md`:
/// the admission rule (Caffeine admits any candidate used more than the
/// victim, which turns a loop larger than the cache into LRU's churn; a fixed
/// margin of two uses instead kept loops but made keys that return three
/// times wait for their third visit, 1.6 points below Caffeine on gli at 750
/// entries; the recency test keeps both), the victim chosen among eight, the
/// minimum sample period, the sketch's shorter aging period, and the window
/// rounded down and allowed to shrink to nothing (Caffeine's starts at one
/// entry at least: in a shard of a small sharded cache, one entry of four,
/// and in a loop a slot that never hits).
///
/// Two ways to take a hit, the template parameter `kClock`:
///
/// - `WTinyLfu` (`kClock == false`): the three segments are exact LRU lists,
///   as in Caffeine. A hit updates the sketch and moves the entry within or
///   between lists, so it needs the shard lock: the cache buffers hits and
///   replays them under the lock (see read_buffer.hpp).
/// - `WTinyLfuClock` (`kClock == true`): the segments are CLOCK queues. A hit
///   takes no lock and goes through no buffer: it sets the entry's
///   referenced bit if it is clear, counts the key in the sketch (a counter
///   already at 15 is only read) and notes its last use if the shard's clock
///   moved on, all with relaxed atomics, so the hot keys of a skewed load
///   write nothing at all and reads scale across cores. Evictions give the
///   second chance that LRU's move to the back gave: a referenced entry at
///   the front of the window or the protected segment goes to the back, one
///   on probation is promoted when its turn comes. The shard's clock counts
///   inserts rather than requests, and hits are counted for the hill climber
///   in batches of 16 per thread; `docs/hit-ratio.md` has both variants'
///   hit ratios.
///
/// Sizes are counted in entries, or in weight in a cache with a weigher (as
/// in Caffeine): the window, the protected segment and the hill climber's
/// steps are shares of the capacity in weight. The sketch and the history
/// of departed keys are sized by the number of entries, which a weighted
/// shard only learns as it fills: they start small and are replaced by
/// larger, empty ones each time the shard's entries outgrow them (the
/// sketch's old table is retired through the epochs, as readers may still
/// count in it).
template <bool kClock>
struct BasicWTinyLfu {
  /// The CLOCK variant's `on_access` only touches relaxed atomics, so the
  /// cache calls it from lock-free readers; the LRU variant's goes through
  /// the read buffer.
  static constexpr bool kConcurrentAccess = kClock;

  struct Hook : detail::ListHook {
    std::uint8_t region = 0;  // window, probation or protected
    // CLOCK variant: set by a hit, cleared when the entry gets its second chance.
    std::atomic<std::uint8_t> referenced{0};
    // CLOCK variant: the sketch generation in which the key's counters were
    // seen at 15 (0: not seen); hits skip the sketch until it changes.
    std::atomic<std::uint16_t> saturated_in{0};
    // On the main space: the shard's clock at the entry's last use. In the
    // window: the clock at its previous use before this stay, from the
    // shard's history of departed keys (0: not known), or at its last hit.
    std::atomic<std::uint32_t> stamp{0};
  };

  template <class Entry>
  class Shard {
   public:
    /// A shard of `capacity` entries.
    Shard(std::size_t capacity, std::uint64_t seed) : Shard(capacity, seed, {}) {}

    /// A shard of `capacity` in the unit of `weights`: weight with a
    /// weigher, entries without.
    Shard(std::size_t capacity, std::uint64_t seed, EntryWeights<Entry> weights)
        : capacity_(capacity),
          weights_(weights),
          sized_for_(weights.weighted() ? std::min(capacity, kFirstWeightedSizing) : capacity),
          sketch_(sized_for_, seed),
          random_state_(seed ^ 0x5851f42d4c957f2dULL) {
      window_max_ = capacity_ / kInitialWindowDivisor;
      protected_max_ = static_cast<std::size_t>(kProtectedShare * (capacity_ - window_max_));
      step_ = -kStepShare * static_cast<double>(capacity_);
      size_by_entries(std::make_unique<std::uint32_t[]>(history_slots_for(sized_for_)));
    }

    /// The slots of the history of departed keys for a shard of `capacity`
    /// entries: kHistoryPerEntry per entry, rounded up to a power of two,
    /// kMinHistory at least and kMaxHistory at most, for any capacity (no
    /// overflow).
    [[nodiscard]] static constexpr std::size_t history_slots_for(std::size_t capacity) noexcept {
      const std::size_t entries = std::min(capacity, kMaxHistory / kHistoryPerEntry);
      return std::bit_ceil(std::max(entries * kHistoryPerEntry, kMinHistory));
    }

    // A new entry starts unreferenced (the hook's initial state); it is not
    // reset here, as a lock-free reader may already have used it.
    void on_insert(Entry& e) noexcept {
      if constexpr (kClock) {
        sketch_.increment_shared(e.hash);
        sketch_.halve_if_due();
      } else {
        sketch_.increment(e.hash);
      }
      ++misses_in_sample_;
      tick();
      if (++entries_ > grow_at_) [[unlikely]]
        grow_sizing();
      set_stamp(e, previous_use(e.hash));
      e.region = kWindow;
      window_.push_back(e);
      window_size_ += weight(e);
      spill_window();
      climb_if_sampled();
    }

    RTCACHE_ALWAYS_INLINE void on_access(Entry& e) noexcept {
      if constexpr (kClock) {
        // Lock-free: relaxed atomics only, and each written only if it
        // changes.
        if (e.referenced.load(std::memory_order_relaxed) == 0) {
          e.referenced.store(1, std::memory_order_relaxed);
        }
        const std::uint16_t generation = sketch_.generation();
        if (e.saturated_in.load(std::memory_order_relaxed) != generation &&
            sketch_.increment_shared(e.hash)) {
          e.saturated_in.store(generation, std::memory_order_relaxed);
        }
        const std::uint32_t now = clock_.load(std::memory_order_relaxed);
        if (now - stamp_of(e) > stamp_slack_.load(std::memory_order_relaxed)) set_stamp(e, now);
        count_hit();
      } else {
        sketch_.increment(e.hash);
        ++hits_in_sample_;
        tick();
        set_stamp(e, clock());
        touch(e);
      }
    }

    /// Before a batch of `on_access` calls (the cache's read buffer replays
    /// up to 16 hits at once): fetches what `on_access(e)` will write, the
    /// key's sketch block and the entry's list neighbours, so that the
    /// batch's cache misses overlap instead of coming one after another.
    RTCACHE_ALWAYS_INLINE void prepare_access(const Entry& e) const noexcept requires(!kClock) {
      sketch_.prefetch(e.hash);
      detail::prefetch(e.prev);
      detail::prefetch(e.next);
    }

    /// The new value takes the old one's place and counts as a hit (without
    /// counting it twice in the sketch or the sample).
    void on_replace(Entry& old, Entry& fresh) noexcept {
      fresh.region = old.region;
      set_stamp(fresh, clock());
      list_of(old).replace(old, fresh);
      std::size_t& size = size_of(fresh.region);
      size = size - weight(old) + weight(fresh);
      if (fresh.region == kProtected) demote_protected_overflow();
      if constexpr (kClock) {
        fresh.referenced.store(1, std::memory_order_relaxed);
        // Same key, same counters: the new entry's hits may skip the sketch
        // as long as the old one's did.
        fresh.saturated_in.store(old.saturated_in.load(std::memory_order_relaxed),
                                 std::memory_order_relaxed);
      } else {
        touch(fresh);
      }
    }

    /// `e`'s value was rewritten in place: as `on_replace(e, e)` would be.
    void on_update(Entry& e) noexcept {
      set_stamp(e, clock());
      if constexpr (kClock) {
        e.referenced.store(1, std::memory_order_relaxed);
      } else {
        touch(e);
      }
    }

    void on_remove(Entry& e) noexcept {
      list_of(e).erase(e);
      size_of(e.region) -= weight(e);
      --entries_;
    }

    Entry* evict() noexcept {
      spill_window();
      if (window_size_ > window_max_) {
        Entry* candidate = window_front();
        settle_probation();
        Entry* victim = main_victim();
        if (victim == nullptr) return remove_from_window(*candidate);
        if (admit(*candidate, *victim)) {
          remove_from_main(*victim);
          move_window_to_probation(*candidate);
          return victim;
        }
        return remove_from_window(*candidate);
      }
      // The window is within its share, so the main space is over its share.
      if (Entry* victim = main_victim()) {
        remove_from_main(*victim);
        return victim;
      }
      Entry* oldest = window_.front();
      return oldest != nullptr ? remove_from_window(*oldest) : nullptr;
    }

    /// For tests: the entries in the order the policy looks at them: the main
    /// space's victims (probation, then protected, oldest first), then the
    /// window, oldest first. Admission decides whether a window candidate or
    /// the main space's victim goes, so this is not strictly the eviction
    /// order.
    template <class F>
    void for_each_in_eviction_order(F&& f) const {
      for (Entry* e = probation_.front(); e != nullptr; e = probation_.next(*e)) f(*e);
      for (Entry* e = protected_.front(); e != nullptr; e = protected_.next(*e)) f(*e);
      for (Entry* e = window_.front(); e != nullptr; e = window_.next(*e)) f(*e);
    }

    /// For tests: the number of entries the sketch and the history are sized
    /// for (the capacity, or with weights what the shard has held so far).
    [[nodiscard]] std::size_t sized_for() const noexcept { return sized_for_; }
    /// For tests: the slots of the history of departed keys.
    [[nodiscard]] std::size_t history_slots() const noexcept { return history_mask_ + 1; }

    /// The sketch's replaced tables wait for readers to leave (see
    /// `detail::FrequencySketch::resize`); the cache calls these as it
    /// reclaims its own memory.
    [[nodiscard]] bool has_retired() const noexcept { return sketch_.has_retired(); }
    template <class Safe>
    void reclaim(Safe&& safe) noexcept {
      sketch_.reclaim(std::forward<Safe>(safe));
    }

    /// For tests: the current window share and the sketch.
    [[nodiscard]] std::size_t window_capacity() const noexcept { return window_max_; }
    [[nodiscard]] std::size_t protected_capacity() const noexcept { return protected_max_; }
    [[nodiscard]] std::size_t window_size() const noexcept { return window_size_; }
    [[nodiscard]] std::size_t probation_size() const noexcept { return probation_size_; }
    [[nodiscard]] std::size_t protected_size() const noexcept { return protected_size_; }
    [[nodiscard]] const detail::FrequencySketch& sketch() const noexcept { return sketch_; }

    /// For tests: true when the structure holds exactly `resident` entries
    /// and its sizes are their weights.
    [[nodiscard]] bool check_invariants(std::size_t resident) const noexcept {
      if (!window_.well_formed() || !probation_.well_formed() || !protected_.well_formed()) {
        return false;
      }
      if (weights_.total(window_) != window_size_ ||
          weights_.total(probation_) != probation_size_ ||
          weights_.total(protected_) != protected_size_) {
        return false;
      }
      if (window_.count() + probation_.count() + protected_.count() != resident ||
          entries_ != resident) {
        return false;
      }
      if (!all_in(window_, kWindow) || !all_in(probation_, kProbation) ||
          !all_in(protected_, kProtected)) {
        return false;
      }
      return window_max_ <= capacity_ && protected_max_ <= capacity_ - window_max_ &&
             protected_size_ <= protected_max_;
    }

   private:
    static constexpr std::uint8_t kWindow = 0;
    static constexpr std::uint8_t kProbation = 1;
    static constexpr std::uint8_t kProtected = 2;

    static constexpr std::size_t kInitialWindowDivisor = 100;  // 1%, rounded down
    static constexpr double kProtectedShare = 0.80;
    static constexpr std::size_t kSamplesPerEntry = 10;
    static constexpr std::size_t kMinSampleSize = 4000;
    static constexpr double kStepShare = 0.0625;
    static constexpr double kStepDecay = 0.98;
    static constexpr double kRestartThreshold = 0.05;
    static constexpr unsigned kAdmissionMargin = 1;
    static constexpr std::size_t kVictimSample = 8;
    static constexpr std::size_t kSettleScan = 2 * kVictimSample;
    static constexpr std::size_t kFirstWeightedSizing = 256;  // entries, doubled as needed
    static constexpr std::size_t kHistoryPerEntry = 4;        // slots of departed keys' last uses
    static constexpr std::size_t kMinHistory = 8;
    static constexpr std::size_t kMaxHistory = std::size_t{1} << 28;  // 1 GiB of slots
    static constexpr unsigned kRandomAdmissionMinFrequency = 6;
    static constexpr std::uint64_t kRandomAdmissionMask = 127;  // admit 1 in 128
    static constexpr std::uint32_t kHitBatch = 16;              // a power of two
    static constexpr std::size_t kStampSlackDivisor = 64;

    [[nodiscard]] std::size_t main_size() const noexcept {
      return probation_size_ + protected_size_;
    }
    [[nodiscard]] std::size_t main_max() const noexcept { return capacity_ - window_max_; }

    detail::IntrusiveList<Entry>& list_of(const Entry& e) noexcept {
      if (e.region == kWindow) return window_;
      return e.region == kProbation ? probation_ : protected_;
    }
    std::size_t& size_of(std::uint8_t region) noexcept {
      if (region == kWindow) return window_size_;
      return region == kProbation ? probation_size_ : protected_size_;
    }

    [[nodiscard]] std::size_t weight(const Entry& e) const noexcept { return weights_(e); }

    // Sizes what depends on the number of entries, for sized_for_ of them:
    // the history of departed keys (`history`, empty, of
    // history_slots_for(sized_for_) slots), its clock units, the hill
    // climber's sample period and the CLOCK variant's stamp slack. The
    // sketch is sized apart.
    void size_by_entries(std::unique_ptr<std::uint32_t[]> history) noexcept {
      history_ = std::move(history);
      history_mask_ = history_slots_for(sized_for_) - 1;
      history_shift_ = history_shift_for(sized_for_);
      stamp_slack_.store(static_cast<std::uint32_t>(
                             std::min<std::size_t>(sized_for_ / kStampSlackDivisor, UINT32_MAX)),
                         std::memory_order_relaxed);
      sample_size_ = sized_for_ > SIZE_MAX / kSamplesPerEntry
                         ? SIZE_MAX
                         : std::max(sized_for_ * kSamplesPerEntry, kMinSampleSize);
      grow_at_ = weights_.weighted() ? sized_for_ : SIZE_MAX;
    }

    // A weighted shard holds more entries than its sketch and history are
    // sized for: replace them by empty ones for twice as many (Caffeine also
    // starts its sketch over when it grows it). Out of memory, it keeps the
    // present ones and tries again at twice as many entries.
    void grow_sizing() noexcept {
      const std::size_t target = sized_for_ > SIZE_MAX / 2 ? SIZE_MAX : sized_for_ * 2;
      try {
        auto history = std::make_unique<std::uint32_t[]>(history_slots_for(target));
        sketch_.resize(target);  // the last step that may throw
        sized_for_ = target;
        size_by_entries(std::move(history));
      } catch (const std::bad_alloc&) {
        grow_at_ = grow_at_ > SIZE_MAX / 2 ? SIZE_MAX : grow_at_ * 2;
      }
    }

    static bool all_in(const detail::IntrusiveList<Entry>& list, std::uint8_t region) noexcept {
      for (Entry* e = list.front(); e != nullptr; e = list.next(*e)) {
        if (e->region != region) return false;
      }
      return true;
    }

    void touch(Entry& e) noexcept {
      switch (e.region) {
        case kWindow:
          window_.move_to_back(e);
          break;
        case kProbation:
          promote(e);
          break;
        default:
          protected_.move_to_back(e);
          break;
      }
    }

    // A hit on probation: to the protected segment, whose overflow goes back.
    void promote(Entry& e) noexcept {
      if (protected_max_ == 0) {
        probation_.move_to_back(e);
        return;
      }
      probation_.erase(e);
      probation_size_ -= weight(e);
      e.region = kProtected;
      protected_.push_back(e);
      protected_size_ += weight(e);
      demote_protected_overflow();
    }

    void demote_protected_overflow() noexcept {
      std::size_t second_chances = protected_size_;  // one pass at most
      while (protected_size_ > protected_max_) {
        Entry* demoted = protected_.front();
        if (kClock && second_chances > 0 && take_reference(*demoted)) {
          --second_chances;
          protected_.move_to_back(*demoted);
          continue;
        }
        protected_.erase(*demoted);
        protected_size_ -= weight(*demoted);
        demoted->region = kProbation;
        probation_.push_back(*demoted);
        probation_size_ += weight(*demoted);
      }
    }

    // The main space's victim: the least frequent of the oldest few entries on
    // probation (the oldest of them on a tie), or the oldest protected entry
    // when probation is empty. Looking at a few instead of one spares an entry
    // that happens to be oldest but is still in demand.
    Entry* main_victim() const noexcept {
      Entry* victim = probation_.front();
      if (victim == nullptr) return protected_.front();
      unsigned lowest = sketch_.frequency(victim->hash);
      Entry* e = probation_.next(*victim);
      for (std::size_t seen = 1; seen < kVictimSample && e != nullptr && lowest > 0; ++seen) {
        const unsigned frequency = sketch_.frequency(e->hash);
        if (frequency < lowest) {
          lowest = frequency;
          victim = e;
        }
        e = probation_.next(*e);
      }
      return victim;
    }

    // The window's overflow flows into the main space while it has room, at
    // every insert (as in Caffeine): in a cache that is not full yet, entries
    // leave the window once newer ones arrive, and probation hits promote
    // them, so a full cache starts with its segments already formed. (Left
    // to the first eviction, the overflow of a filling cache, nearly all of
    // it, moved in one step under the shard lock, and every hit until then
    // reordered one long window.)
    void spill_window() noexcept {
      while (window_size_ > window_max_ && main_size() < main_max()) {
        move_window_to_probation(*window_front());
      }
    }

    // CLOCK variant: a hit clears its referenced bit and answers true.
    static bool take_reference(Entry& e) noexcept {
      if (e.referenced.load(std::memory_order_relaxed) == 0) return false;
      e.referenced.store(0, std::memory_order_relaxed);
      return true;
    }

    // The window's oldest entry. In the CLOCK variant, referenced entries at
    // the front first go to the back (their bit cleared), as a hit moved them
    // there in the LRU variant; one pass at most, as readers may set bits
    // again meanwhile.
    Entry* window_front() noexcept {
      if constexpr (kClock) {
        for (std::size_t n = window_size_; n > 0 && take_reference(*window_.front()); --n) {
          window_.move_to_back(*window_.front());
        }
      }
      return window_.front();
    }

    // CLOCK variant: the referenced entries among the oldest on probation were
    // hit there; promote them now, as the LRU variant did at the hit, so that
    // the victim is chosen among entries unused since they came. It looks
    // until it has passed kSettleScan unreferenced entries (twice the victim
    // sample: on the traces of docs/hit-ratio.md, mean gap to Optimal 4.56
    // points, against 4.59 with the victim sample alone).
    void settle_probation() noexcept {
      if constexpr (kClock) {
        std::size_t steps = main_size() + kSettleScan;  // bounded: readers set bits meanwhile
        std::size_t unreferenced = 0;
        Entry* e = probation_.front();
        while (e != nullptr && unreferenced < kSettleScan && steps-- > 0) {
          Entry* next = probation_.next(*e);
          if (take_reference(*e)) {
            promote(*e);
          } else {
            ++unreferenced;
          }
          e = next;
        }
      }
    }

    void move_window_to_probation(Entry& e) noexcept {
      window_.erase(e);
      window_size_ -= weight(e);
      e.region = kProbation;
      set_stamp(e, clock());  // it was used while in the window, shortly before
      probation_.push_back(e);
      probation_size_ += weight(e);
    }

    // Candidates leave the window right after their last use, or soon after.
    Entry* remove_from_window(Entry& e) noexcept {
      remember(e.hash, clock());
      window_.erase(e);
      window_size_ -= weight(e);
      --entries_;
      return &e;
    }

    void remove_from_main(Entry& e) noexcept {
      remember(e.hash, stamp_of(e));
      list_of(e).erase(e);
      size_of(e.region) -= weight(e);
      --entries_;
    }

    // A candidate used at least two times more than the victim gets in. One
    // that leads by one use only (its count includes the miss that brought it
    // in) gets in if its previous use came after the victim's last one: not
    // in a loop over more keys than fit, where the victim's turn comes next
    // and the candidate's previous use was a whole loop ago; but yes for keys
    // that return soon while the victim sits idle.
    bool admit(const Entry& candidate, const Entry& victim) noexcept {
      const unsigned candidate_frequency = sketch_.frequency(candidate.hash);
      const unsigned victim_frequency = sketch_.frequency(victim.hash);
      if (candidate_frequency > victim_frequency + kAdmissionMargin) return true;
      const std::uint32_t now = clock();
      if (candidate_frequency > victim_frequency && stamp_of(candidate) != 0 &&
          static_cast<std::uint32_t>(now - stamp_of(candidate)) <
              static_cast<std::uint32_t>(now - stamp_of(victim))) {
        return true;
      }
      if (candidate_frequency < kRandomAdmissionMinFrequency) return false;
      return (next_random() & kRandomAdmissionMask) == 0;
    }

    // The clock: requests seen by the shard in the LRU variant, inserts in
    // the CLOCK variant (there hits do not write it: lock-free readers only
    // read it). 0 is skipped: it means "not known".
    [[nodiscard]] std::uint32_t clock() const noexcept {
      return clock_.load(std::memory_order_relaxed);
    }
    void tick() noexcept {
      const std::uint32_t next = clock() + 1;
      clock_.store(next != 0 ? next : 1, std::memory_order_relaxed);
    }

    static std::uint32_t stamp_of(const Entry& e) noexcept {
      return e.stamp.load(std::memory_order_relaxed);
    }
    static void set_stamp(Entry& e, std::uint32_t stamp) noexcept {
      e.stamp.store(stamp, std::memory_order_relaxed);
    }

    // CLOCK variant: readers count hits for the hill climber per thread, and
    // add them to the shard in batches (one atomic add per kHitBatch hits),
    // each thread to a stripe of its own (detail::StripedCount), so
    // that two cores do not pass the counter's line back and forth.
    void count_hit() noexcept {
      thread_local std::uint32_t hits = 0;
      if ((++hits & (kHitBatch - 1)) == 0) batched_hits_.add(kHitBatch);
    }
    [[nodiscard]] std::size_t hits_in_sample() const noexcept {
      if constexpr (kClock) {
        return batched_hits_.sum() - batched_hits_base_;
      } else {
        return hits_in_sample_;
      }
    }

    // A history slot, 32 bits: at the top, a kFingerprintBits fingerprint
    // of the hash (never 0, an empty slot's); below, the
    // low kClockBits bits of the clock at the key's last use, counted in
    // units of 2^history_shift_ requests (1 for shards of up to 4096 entries,
    // so that a slot spans at least 1024 times the shard's capacity).
    static constexpr unsigned kFingerprintBits = 10;
    static constexpr unsigned kClockBits = 32 - kFingerprintBits;
    static constexpr std::uint32_t kClockMask = (std::uint32_t{1} << kClockBits) - 1;
    static constexpr unsigned kExactHistoryBits = 12;  // shards of 4096 entries

    static unsigned history_shift_for(std::size_t capacity) noexcept {
      const auto bits = static_cast<unsigned>(std::bit_width(capacity));
      const unsigned shift = bits > kExactHistoryBits ? bits - kExactHistoryBits : 0;
      return shift < 32 - kClockBits ? shift : 32 - kClockBits;  // units must not wrap early
    }

    // Entries keep 32 bits of hash, whose low ones pick the slot: the
    // fingerprint comes from a remix of them, independent of the slot.
    static std::uint32_t fingerprint(std::uint64_t hash) noexcept {
      const auto bits = static_cast<std::uint32_t>(detail::mix64(hash) >> 32) &
                        ((std::uint32_t{1} << kFingerprintBits) - 1);
      return bits != 0 ? bits : 1;
    }

    // The clock at the key's last use before it left (to the unit), if it
    // left recently.
    [[nodiscard]] std::uint32_t previous_use(std::uint64_t hash) const noexcept {
      const std::uint32_t slot = history_[hash & history_mask_];
      if ((slot >> kClockBits) != fingerprint(hash)) return 0;
      const std::uint32_t now = clock() >> history_shift_;
      const std::uint32_t use = (now - ((now - slot) & kClockMask)) << history_shift_;
      return use != 0 ? use : 1;
    }

    void remember(std::uint64_t hash, std::uint32_t last_use) noexcept {
      if (last_use == 0) return;
      history_[hash & history_mask_] =
          (fingerprint(hash) << kClockBits) | ((last_use >> history_shift_) & kClockMask);
    }

    std::uint64_t next_random() noexcept {
      random_state_ += 0x9e3779b97f4a7c15ULL;
      return detail::mix64(random_state_);
    }

    // Hill climbing: once per sample period, step the window size in the
    // direction that raised the hit ratio.
    void climb_if_sampled() noexcept {
      const std::size_t hits = hits_in_sample();
      const std::size_t requests = hits + misses_in_sample_;
      if (requests < sample_size_) return;
      const double hit_ratio = static_cast<double>(hits) / static_cast<double>(requests);
      const double change = hit_ratio - previous_hit_ratio_;
      const double amount = change >= 0 ? step_ : -step_;
      const double magnitude = change >= 0 ? change : -change;
      if (magnitude >= kRestartThreshold) {
        step_ = (amount >= 0 ? 1.0 : -1.0) * kStepShare * static_cast<double>(capacity_);
      } else {
        step_ = kStepDecay * amount;
      }
      previous_hit_ratio_ = hit_ratio;
      hits_in_sample_ = misses_in_sample_ = 0;
      batched_hits_base_ += hits;

      const auto whole = static_cast<long long>(amount);
      if (whole > 0) grow_window(static_cast<std::size_t>(whole));
      if (whole < 0) shrink_window(static_cast<std::size_t>(-whole));
    }

    void grow_window(std::size_t amount) noexcept {
      const std::size_t quota = amount < protected_max_ ? amount : protected_max_;
      protected_max_ -= quota;
      window_max_ += quota;
      demote_protected_overflow();
      // The main space's oldest entries move to the window, to compete again
      // when they leave it.
      for (std::size_t moved = 0; moved < quota;) {
        Entry* e = probation_.front();
        if (e == nullptr) break;
        const std::size_t w = weight(*e);
        probation_.erase(*e);
        probation_size_ -= w;
        e->region = kWindow;
        window_.push_back(*e);
        window_size_ += w;
        moved += w != 0 ? w : 1;
      }
    }

    void shrink_window(std::size_t amount) noexcept {
      const std::size_t quota = amount < window_max_ ? amount : window_max_;
      window_max_ -= quota;
      protected_max_ += quota;
      for (std::size_t moved = 0; moved < quota && window_size_ > window_max_;) {
        Entry& e = *window_.front();
        moved += std::max<std::size_t>(weight(e), 1);
        move_window_to_probation(e);
      }
    }

    std::size_t capacity_;
    EntryWeights<Entry> weights_;
    std::size_t sized_for_;           // entries the sketch and the history are sized for
    std::size_t grow_at_ = SIZE_MAX;  // entries beyond which they grow (weighted only)
    std::size_t entries_ = 0;
    std::size_t window_max_ = 1;
    std::size_t protected_max_ = 0;
    std::size_t window_size_ = 0;
    std::size_t probation_size_ = 0;
    std::size_t protected_size_ = 0;
    detail::IntrusiveList<Entry> window_;     // LRU, front = oldest
    detail::IntrusiveList<Entry> probation_;  // LRU, front = oldest
    detail::IntrusiveList<Entry> protected_;  // LRU, front = oldest
    detail::FrequencySketch sketch_;
    std::uint64_t random_state_;
    std::atomic<std::uint32_t> clock_{0};  // see clock()
    // CLOCK variant: last uses are noted to this many inserts (read by readers)
    std::atomic<std::uint32_t> stamp_slack_{0};
    std::size_t history_mask_ = 0;
    // The last use of recently departed keys: per slot, a fingerprint of the
    // hash and the clock (see previous_use), direct-mapped by hash (a newer
    // key overwrites).
    std::unique_ptr<std::uint32_t[]> history_;
    unsigned history_shift_ = 0;
    std::size_t sample_size_ = 0;
    std::size_t hits_in_sample_ = 0;
    std::size_t misses_in_sample_ = 0;
    double previous_hit_ratio_ = 0.0;
    double step_ = 0.0;
    std::size_t batched_hits_base_ = 0;  // batched_hits_ at the start of the sample
    detail::StripedCount batched_hits_;  // added to by readers (CLOCK variant)
  };
};

/// W-TinyLFU with exact LRU segments, hits replayed under the shard lock.
using WTinyLfu = BasicWTinyLfu<false>;
/// W-TinyLFU with CLOCK segments: hits take no lock and write nothing when
/// the entry is already referenced and its counters are saturated.
using WTinyLfuClock = BasicWTinyLfu<true>;

}  // namespace rtcache::policy
