# `ktstr bisect` without a VM: matchers, verdicts, version ladders, and the
# bad-input cases through the real binary (repositories made with libgit2).
ktstr_unit_test(test_bisect_cli SOURCES unit/test_bisect_cli.cpp LIBS ktstr_bisectrun PkgConfig::LIBGIT2)
target_include_directories(test_bisect_cli PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
if(TARGET ktstr)
  add_dependencies(test_bisect_cli ktstr)
endif()
