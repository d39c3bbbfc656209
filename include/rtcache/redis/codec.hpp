#pragma once

/// \file
/// How values and keys travel through Redis: as bytes, through a codec.

#include <charconv>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace rtcache::redis {

/// A value codec for values of type `V`: `codec.encode(value)` gives the
/// bytes stored in Redis, `codec.decode(bytes)` gives the value back. Both
/// are called concurrently from many threads; `decode` may throw on bytes it
/// does not understand (the tier then treats the entry as a miss).
template <class C, class V>
concept CodecFor = requires(const C& codec, const V& value, std::string_view bytes) {
  { codec.encode(value) } -> std::convertible_to<std::string>;
  { codec.decode(bytes) } -> std::convertible_to<V>;
};

/// The codec of string-like values (`std::string`, or any type convertible
/// to `std::string_view` and constructible from `std::string`): the bytes
/// are the string itself.
struct StringCodec {
  template <class V>
  requires std::convertible_to<const V&, std::string_view>
  [[nodiscard]] std::string encode(const V& value) const {
    return std::string(std::string_view(value));
  }
  [[nodiscard]] std::string decode(std::string_view bytes) const { return std::string(bytes); }
};

/// A key codec for keys of type `K`: `encode(key)` gives the text after the
/// tier's key prefix in Redis and in invalidation messages; `decode(text)`
/// gives the key back, or `std::nullopt` for text that is no key (such a
/// message is ignored).
template <class C, class K>
concept KeyCodecFor = requires(const C& codec, const K& key, std::string_view text) {
  { codec.encode(key) } -> std::convertible_to<std::string>;
  { codec.decode(text) } -> std::same_as<std::optional<K>>;
};

/// The default key codec: decimal text for integer keys, the string itself
/// for string keys. Other key types need a codec of their own.
template <class K>
struct DefaultKeyCodec {
  static_assert((std::is_integral_v<K> && !std::same_as<K, bool>) || std::same_as<K, std::string>,
                "rtcache::redis: DefaultKeyCodec handles integer and std::string keys; give "
                "the Tier a key codec (a KeyCodecFor<K>) for other key types");

  [[nodiscard]] std::string encode(const K& key) const {
    if constexpr (std::same_as<K, std::string>) {
      return key;
    } else {
      return std::to_string(key);
    }
  }

  [[nodiscard]] std::optional<K> decode(std::string_view text) const {
    if constexpr (std::same_as<K, std::string>) {
      return K(text);
    } else {
      K key{};
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), key);
      if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
      return key;
    }
  }
};

}  // namespace rtcache::redis
