// Catch2's main(), compiled once for all test executables. Only Catch2 v2
// needs it; v3 ships its main in Catch2::Catch2WithMain, and
// tests/CMakeLists.txt does not build this file then.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
