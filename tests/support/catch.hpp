#pragma once

// Every test includes this instead of naming a Catch2 header, so the tests
// build against Catch2 v3 (catch_all.hpp) and v2 (the single header) alike.
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
