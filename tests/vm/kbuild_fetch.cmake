# `kernel fetch` against the real Debian archive: label `net` (not `unit`, not `vm`).
add_executable(test_kbuild_fetch ${CMAKE_CURRENT_LIST_DIR}/test_kbuild_fetch.cpp)
target_link_libraries(test_kbuild_fetch PRIVATE ktstr_kbuild ktstr_db GTest::gtest GTest::gtest_main)
add_test(NAME test_kbuild_fetch COMMAND test_kbuild_fetch)
set_tests_properties(test_kbuild_fetch PROPERTIES LABELS "net;kernel" TIMEOUT 600)
