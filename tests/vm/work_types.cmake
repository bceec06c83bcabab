# Work types (guest/agent/work.cpp) and a canned scenario in a real VM: each
# worker's counters are non-zero and plausible. Two short EEVDF boots.
ktstr_vm_test(test_work_types_vm SOURCES vm/test_work_types_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_work_types_vm ktstr)
endif()
