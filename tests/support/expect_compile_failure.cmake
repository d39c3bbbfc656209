# Checks that a source file fails to compile with the expected message.
#
#   cmake -DCOMPILER=<c++> -DINCLUDE_DIR=<dir> -DSOURCE=<file.cpp>
#         -DEXPECTED=<regex> -P expect_compile_failure.cmake
#
# Fails if the file compiles, or if the diagnostics do not match EXPECTED
# (so a file that fails for the wrong reason, a typo say, does not pass).
foreach(var IN ITEMS COMPILER INCLUDE_DIR SOURCE EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_compile_failure.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(
  COMMAND ${COMPILER} -std=c++20 -fsyntax-only -I${INCLUDE_DIR} ${SOURCE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)

if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not.")
endif()
if(NOT output MATCHES "${EXPECTED}")
  message(NOTICE "Compiler output:\n${output}")
  message(FATAL_ERROR
      "${SOURCE} failed to compile, but its diagnostics do not match the regex '${EXPECTED}'.")
endif()
message(STATUS "${SOURCE} failed to compile as expected, matching '${EXPECTED}'.")
