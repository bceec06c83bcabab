# core matchers: the scx_bpf_error matchers (PCRE2) and `ktstr test -E` filtersets.
ktstr_unit_test(test_matcher SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_matcher.cpp LIBS ktstr_core)
ktstr_unit_test(test_filterset SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_filterset.cpp LIBS ktstr_core)
ktstr_unit_test(test_pin SOURCES unit/test_pin.cpp LIBS ktstr_core)
