# core: topology, test specs, scenarios (no VM).
ktstr_unit_test(test_topology SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_topology.cpp LIBS ktstr_core)
ktstr_unit_test(test_spec SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_spec.cpp LIBS ktstr_core)
ktstr_unit_test(test_scenario SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_scenario.cpp LIBS ktstr_core)
ktstr_unit_test(test_stats SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_stats.cpp LIBS ktstr_core)
ktstr_unit_test(test_run_compare SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_run_compare.cpp LIBS ktstr_core)
ktstr_unit_test(test_checks SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_checks.cpp LIBS ktstr_core)
ktstr_unit_test(test_verifier_stats SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_verifier_stats.cpp LIBS ktstr_core)
ktstr_unit_test(test_host_lock SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_host_lock.cpp LIBS ktstr_core)
