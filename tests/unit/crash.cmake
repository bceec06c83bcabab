# crash: parsing a dead scheduler's output, signatures, the crash store.
ktstr_unit_test(test_crash_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_crash_parse.cpp LIBS ktstr_core)
ktstr_unit_test(test_crash_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_crash_store.cpp LIBS ktstr_db)
# The `ktstr crash` tests run the built binary.
if(TARGET ktstr)
  add_dependencies(test_crash_store ktstr)
endif()
