# bisect: the candidate graph and the flake-aware search (simulated verdicts, no VM).
ktstr_unit_test(test_bisect_graph SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_graph.cpp LIBS ktstr_bisect)
ktstr_unit_test(test_bisect_search SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_search.cpp LIBS ktstr_bisect)
ktstr_unit_test(test_bisect_batch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_batch.cpp LIBS ktstr_bisect)
