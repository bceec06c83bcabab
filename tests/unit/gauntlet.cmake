# `ktstr gauntlet`: axes, matrix, verdicts, grid and JSON (cmd/gauntlet.hpp);
# bad input through the real binary.
ktstr_unit_test(test_gauntlet SOURCES unit/test_gauntlet.cpp LIBS ktstr_run)
if(TARGET ktstr)
  add_dependencies(test_gauntlet ktstr)
endif()
