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
  endif()
endfunction()
