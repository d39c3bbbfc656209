# Fails when a C++ source of the project is not formatted as .clang-format says.
#   cmake -DCLANG_FORMAT=<clang-format> -DSOURCE_DIR=<repo> -P check_format.cmake
file(GLOB_RECURSE sources
    ${SOURCE_DIR}/include/*.hpp
    ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/tests/*.hpp
    ${SOURCE_DIR}/bench/*.cpp ${SOURCE_DIR}/bench/*.hpp
    ${SOURCE_DIR}/examples/*.cpp ${SOURCE_DIR}/examples/*.hpp
    ${SOURCE_DIR}/fuzz/*.cpp ${SOURCE_DIR}/fuzz/*.hpp)
execute_process(
    COMMAND ${CLANG_FORMAT} --dry-run --Werror ${sources}
    RESULT_VARIABLE result
    ERROR_VARIABLE errors)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "rtcache: sources not clang-formatted (run clang-format -i on them):\n${errors}")
endif()
list(LENGTH sources count)
message(STATUS "rtcache: ${count} sources are clang-formatted")
