# rtcache_enable_sanitizers(<target>)
#
# Builds one of rtcache's own targets with the sanitizers named in the cache
# variable RTCACHE_SANITIZE: "" (none), "address,undefined" or "thread".
# Consumers of rtcache::rtcache are never affected.
function(rtcache_enable_sanitizers target)
  if(NOT RTCACHE_SANITIZE)
    return()
  endif()
  if(NOT RTCACHE_SANITIZE MATCHES "^(address,undefined|thread)$")
    message(FATAL_ERROR
        "RTCACHE_SANITIZE='${RTCACHE_SANITIZE}': expected '', 'address,undefined' or 'thread'")
  endif()

  set(flags -fsanitize=${RTCACHE_SANITIZE} -fno-omit-frame-pointer)
  if(RTCACHE_SANITIZE MATCHES "undefined")
    # Make every UB report fatal, so a test cannot pass with UB in it.
    list(APPEND flags -fno-sanitize-recover=all)
  endif()
  target_compile_options(${target} PRIVATE ${flags})
  target_link_options(${target} PRIVATE ${flags})
endfunction()
