# `ktstr test --repeat N` in real VMs (label vm): three repetitions of the
# map-write crash in one boot, each with its own verdict and crash record,
# the crash replayed once.
ktstr_vm_test(test_repeat_vm SOURCES vm/test_repeat_vm.cpp LIBS ktstr_core TIMEOUT 1200)
if(TARGET ktstr)
  add_dependencies(test_repeat_vm ktstr)
endif()
