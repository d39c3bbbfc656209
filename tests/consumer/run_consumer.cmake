# Builds and runs a small project that uses rtcache the way a user would.
#
#   cmake -DMODE=find_package|add_subdirectory -DRTCACHE_SOURCE_DIR=<repo>
#         -DCONSUMER_SOURCE_DIR=<dir> -DWORK_DIR=<dir> -DGENERATOR=<generator>
#         -DCXX_COMPILER=<c++> -P run_consumer.cmake
#
# find_package:     installs rtcache into WORK_DIR/prefix, then builds the
#                   consumer with CMAKE_PREFIX_PATH pointing there.
# add_subdirectory: builds the consumer, which adds RTCACHE_SOURCE_DIR itself.
foreach(var IN ITEMS MODE RTCACHE_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# Runs a command, stopping the test with its output if it fails.
function(run)
  message(STATUS "Running: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "Command failed (${result}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_args
    -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_BUILD_TYPE=Release)

if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${RTCACHE_SOURCE_DIR} -B ${WORK_DIR}/rtcache
      ${consumer_args}
      -DCMAKE_INSTALL_PREFIX=${prefix}
      -DRTCACHE_BUILD_TESTS=OFF
      -DRTCACHE_BUILD_BENCH=OFF
      -DRTCACHE_BUILD_EXAMPLES=OFF
      -DRTCACHE_BUILD_FUZZ=OFF)
  run(${CMAKE_COMMAND} --build ${WORK_DIR}/rtcache)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/rtcache)
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${prefix})
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND consumer_args -DRTCACHE_SOURCE_DIR=${RTCACHE_SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/consumer ${consumer_args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/consumer)
