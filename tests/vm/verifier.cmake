# `ktstr verifier` on the fixture in one VM (binary vs .bpf.o, compared), and
# its bad-input checks that must fail before a VM boots.
ktstr_vm_test(test_verifier_vm SOURCES vm/test_verifier_vm.cpp LIBS ktstr_core TIMEOUT 600)
get_target_property(ktstr_verifier_obj scx_ktstr_skel KTSTR_BPF_OBJECT)
target_compile_definitions(test_verifier_vm PRIVATE KTSTR_SCX_KTSTR_BPF_O="${ktstr_verifier_obj}")
add_dependencies(test_verifier_vm scx_ktstr_skel_gen)
if(TARGET ktstr)
  add_dependencies(test_verifier_vm ktstr)
endif()
