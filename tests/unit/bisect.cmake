# bisect: the candidate graph and the flake-aware search (simulated verdicts, no VM).
# unit/bisect_sim.hpp: the chain and generator both search tests use.
ktstr_unit_test(test_bisect_graph SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_graph.cpp LIBS ktstr_bisect)
ktstr_unit_test(test_bisect_search SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_search.cpp LIBS ktstr_bisect)
ktstr_unit_test(test_bisect_batch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_batch.cpp LIBS ktstr_bisect)
target_include_directories(test_bisect_search PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_include_directories(test_bisect_batch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
