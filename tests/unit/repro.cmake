# repro: crash probe targets, BTF argument kinds, the auto-repro section.
ktstr_unit_test(test_probe_targets SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_probe_targets.cpp LIBS ktstr_core ktstr_kbuild ktstr_db)
ktstr_unit_test(test_repro_render SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_repro_render.cpp LIBS ktstr_run)
