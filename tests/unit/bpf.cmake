# bpf / guest/scheduler: the map-write logic, checked against the fixture's
# real BPF object (BTF offsets) and its skeleton (compiler layout).
ktstr_unit_test(test_mapwrite SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_mapwrite.cpp
  LIBS ktstr_mapwrite scx_ktstr_skel)
get_target_property(ktstr_scx_ktstr_obj scx_ktstr_skel KTSTR_BPF_OBJECT)
target_compile_definitions(test_mapwrite PRIVATE KTSTR_SCX_KTSTR_BPF_O="${ktstr_scx_ktstr_obj}")

# core/bpf_elf on the fixture's real object and its loader binary (which
# embeds the object through the skeleton; absent in the sanitizer build).
ktstr_unit_test(test_bpf_elf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_bpf_elf.cpp LIBS ktstr_core)
add_dependencies(test_bpf_elf scx_ktstr_skel_gen)
target_compile_definitions(test_bpf_elf PRIVATE KTSTR_SCX_KTSTR_BPF_O="${ktstr_scx_ktstr_obj}")
if(TARGET scx-ktstr)
  add_dependencies(test_bpf_elf scx-ktstr)
  target_compile_definitions(test_bpf_elf PRIVATE KTSTR_SCX_KTSTR_BIN="$<TARGET_FILE:scx-ktstr>")
endif()
