# Workload checks (core/checks) in a real VM: one that fails, the rest holding.
ktstr_vm_test(test_checks_vm SOURCES vm/test_checks_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_checks_vm ktstr)
endif()
