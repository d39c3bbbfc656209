# rtcache_set_warnings(<target>)
#
# Turns on warnings, as errors, for one of rtcache's own targets (tests,
# benchmarks, examples). Never applied to the rtcache interface target, so
# consumers keep their own warning settings.
function(rtcache_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive- /WX)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
    # GCC 12 at -O2 and above reports `"literal" + std::string` inside
    # libstdc++ as an overlapping memcpy, wrongly (GCC bug 105329): on GCC 12
    # it stays a warning, so that it cannot fail a release build of the tests.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
       AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-error=restrict)
    endif()
  endif()
endfunction()
