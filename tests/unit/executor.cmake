# executor: work-unit files and `ktstr run-unit` (no cluster), and
# SlurmExecutor against a real one-node Slurm the test starts itself
# (tests/slurm/one_node_slurm.hpp; needs root and Debian's Slurm and munge,
# which scripts/setup.sh installs; under CI=true their absence fails).
ktstr_unit_test(test_slurm_executor SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_slurm_executor.cpp
  LIBS ktstr_executor LABELS slurm)
target_include_directories(test_slurm_executor PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(test_slurm_executor ktstr)
