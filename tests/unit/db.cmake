# db: the SQLite store.
ktstr_unit_test(test_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_store.cpp LIBS ktstr_db)
ktstr_unit_test(test_bisect_store SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_bisect_store.cpp LIBS ktstr_db)
