# bpf / guest/scheduler: the map-write logic, checked against the fixture's
# real BPF object (BTF offsets) and its skeleton (compiler layout).
ktstr_unit_test(test_mapwrite SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mapwrite.cpp
  LIBS ktstr_mapwrite scx_ktstr_skel)
get_target_property(ktstr_scx_ktstr_obj scx_ktstr_skel KTSTR_BPF_OBJECT)
target_compile_definitions(test_mapwrite PRIVATE KTSTR_SCX_KTSTR_BPF_O="${ktstr_scx_ktstr_obj}")
