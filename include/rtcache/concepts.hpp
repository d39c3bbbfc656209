#pragma once

/// \file
/// The customization points of a ReadThroughCache, as concepts: the loader,
/// the writer and the eviction policy.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <ranges>
#include <type_traits>
#include <vector>

#include "detail/entry.hpp"
#include "versioned.hpp"

namespace rtcache {

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

/// What a loader may return for values of type `V`:
/// - `std::optional<V>`: the value, or `std::nullopt` when the store has no such key;
/// - `std::optional<Versioned<V>>`: the same, with the store's version;
/// - `V` or `Versioned<V>`: for stores in which every key exists;
/// - `Loaded<V>` or `std::optional<Loaded<V>>`: with a time to live of its own.
template <class R, class V>
concept LoadResultFor = std::same_as<R, std::optional<V>> || std::same_as<R, V> ||
    std::same_as<R, Versioned<V>> || std::same_as<R, std::optional<Versioned<V>>> ||
    std::same_as<R, Loaded<V>> || std::same_as<R, std::optional<Loaded<V>>>;

/// A loader reads one key from the store: `loader(key)` returns a
/// `LoadResultFor<V>`. It may be called from several threads at once (for
/// different keys) and may throw; the exception reaches every caller waiting
/// for that load.
template <class L, class K, class V>
concept LoaderFor = std::invocable<L&, const K&> &&
    LoadResultFor<std::remove_cvref_t<std::invoke_result_t<L&, const K&>>, V>;

/// A loader that can also load many keys in one call (one SQL `IN (...)`
/// query): `loader.load_all(keys)` takes a `std::vector<K>` and returns a
/// range of `(key, value)` pairs (e.g. a `std::unordered_map<K, V>`), the
/// value being `V`, `Versioned<V>` or `Loaded<V>`. Keys it leaves out are "not
/// found". `get_all` uses it when present.
template <class L, class K, class V>
concept BatchLoaderFor = requires(L& loader, const std::vector<K>& keys) {
  { loader.load_all(keys) } -> std::ranges::input_range;
}
&&LoadResultFor<
    std::remove_cvref_t<
        decltype(std::declval<std::ranges::range_value_t<decltype(std::declval<L&>().load_all(
                     std::declval<const std::vector<K>&>()))>>()
                     .second)>,
    V>;

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// The writer of a read-only cache: `put` and `erase` do not compile with it.
struct NoWriter {};

/// What a writer's write may return: nothing (the cache then holds the value
/// it was given, at an unknown version), the value the store actually holds
/// (`V`), or that value with its version (`Versioned<V>`, e.g. from SQL
/// `RETURNING`, when triggers or defaults change what was written).
template <class R, class V>
concept WriteResultFor = std::is_void_v<R> || std::same_as<R, V> || std::same_as<R, Versioned<V>>;

/// What a conditional write may return: the stored row, or only its new
/// version; `std::nullopt` when the store's version was not the expected one.
template <class R, class V>
concept ConditionalWriteResultFor =
    std::same_as<R, std::optional<Versioned<V>>> || std::same_as<R, std::optional<std::uint64_t>>;

namespace detail {
template <class W, class K, class V>
concept HasWriteMember = requires(W& w, const K& k, const V& v) {
  w.write(k, v);
};
}  // namespace detail

/// A writer writes one key to the store, synchronously. Either a callable
/// `writer(key, value)`, or an object with a member `write(key, value)` and
/// optionally `erase(key)` (see `DeletingWriterFor`) and
/// `write_if_version(key, value, expected_version)` (see `VersionedWriterFor`).
template <class W, class K, class V>
concept WriterFor =
    (detail::HasWriteMember<W, K, V> &&
     WriteResultFor<std::remove_cvref_t<decltype(std::declval<W&>().write(
                        std::declval<const K&>(), std::declval<const V&>()))>,
                    V>) ||
    (!detail::HasWriteMember<W, K, V> && std::invocable<W&, const K&, const V&> &&
     WriteResultFor<std::remove_cvref_t<std::invoke_result_t<W&, const K&, const V&>>, V>);

/// A writer that can delete: `writer.erase(key)` removes the key from the
/// store (deleting a missing key is not an error). Needed by `erase`.
template <class W, class K>
concept DeletingWriterFor = requires(W& w, const K& k) {
  w.erase(k);
};

/// A writer that can write conditionally:
/// `writer.write_if_version(key, value, expected)` writes only if the store
/// holds the key at version `expected`, in one atomic step (compare-and-set),
/// and returns a `ConditionalWriteResultFor<V>`. Needed by `put_if_version`.
template <class W, class K, class V>
concept VersionedWriterFor = requires(W& w, const K& k, const V& v, std::uint64_t expected) {
  { w.write_if_version(k, v, expected) } -> ConditionalWriteResultFor<V>;
};

// ---------------------------------------------------------------------------
// Eviction policy
// ---------------------------------------------------------------------------

/// The per-shard part of a policy, for entries of type `Entry` (which derives
/// from the policy's `Hook` and has a `const std::uint64_t hash`). The shard
/// calls it under its lock; it must not lock, and should not allocate per
/// call. Its calls are `noexcept`: the cache makes them between steps of a
/// change to its table that it cannot undo (an entry already linked for
/// lock-free readers, say), so a policy that needs memory per entry takes it
/// up front, as the capacity tells. `evict()` picks an entry, unlinks it from the policy's own
/// structures and returns it (it may be the entry inserted last: that is admission), or returns
/// nullptr when it holds none.
///
/// Optional: a constructor `S(capacity, seed, EntryWeights<Entry> weights)`,
/// which the cache prefers: with a weigher, `capacity` is in weight and
/// `weights(e)` is an entry's weight, so that the policy can measure its
/// regions in weight; structures it sizes per entry should then follow the
/// entries it holds rather than the capacity.
///
/// Optional: `has_retired()` and `reclaim(safe)`, for a policy that replaces
/// memory its lock-free `on_access` reads (see `kConcurrentAccess`): it keeps
/// the old memory, stamped with `detail::EpochDomain::stamp()`, until the
/// cache's `reclaim(safe)` finds `safe(stamp)` true.
///
/// Optional: `on_update(e)` (`noexcept` too), called when a write rewrites
/// `e`'s value in place (values the cache can copy atomically: integers,
/// pointers, small structs), where it would otherwise call
/// `on_replace(old, fresh)`; it must leave the policy as that call would.
/// Without it, such writes replace the entry.
template <class S, class Entry>
concept ShardPolicyFor = std::constructible_from<S, std::size_t, std::uint64_t> &&
    requires(S& s, const S& cs, Entry& e, Entry& fresh) {
  { s.on_insert(e) }
  noexcept->std::same_as<void>;
  { s.on_access(e) }
  noexcept->std::same_as<void>;
  { s.on_replace(e, fresh) }
  noexcept->std::same_as<void>;
  { s.on_remove(e) }
  noexcept->std::same_as<void>;
  { s.evict() }
  noexcept->std::same_as<Entry*>;
} &&(
    !requires(S & s, Entry& e) { s.on_update(e); } ||
    requires(S & s, Entry& e) {
      { s.on_update(e) }
      noexcept;
    });

namespace detail {
template <class Policy>
using ProbeEntry = Entry<int, int, typename Policy::Hook>;
}

/// An eviction policy: a type with a default-constructible per-entry `Hook`
/// and a per-shard `template <class Entry> class Shard` that satisfies
/// `ShardPolicyFor` (constructed with the shard's capacity and a seed).
template <class P>
concept EvictionPolicy = requires {
  typename P::Hook;
}
&&std::default_initializable<typename P::Hook>&& requires {
  typename P::template Shard<detail::ProbeEntry<P>>;
}
&&ShardPolicyFor<typename P::template Shard<detail::ProbeEntry<P>>, detail::ProbeEntry<P>>;

}  // namespace rtcache
