# cmd/: dispatch through the real binary; collector and evaluation on frames.
ktstr_unit_test(test_dispatch SOURCES unit/test_dispatch.cpp LIBS ktstr_core)
if(TARGET ktstr)
  add_dependencies(test_dispatch ktstr)
endif()
ktstr_unit_test(test_collector SOURCES unit/test_collector.cpp LIBS ktstr_pipeline)
