# Workload checks (core/checks) in a real VM: one that fails, the rest holding.
ktstr_vm_test(test_checks_vm SOURCES vm/test_checks_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_checks_vm ktstr)
endif()

# Every check failing for a real reason (a fixture scheduler that stops
# preempting, a cgroup whose only CPU goes offline), all its failures listed.
# Two boots (about 35 s of TCG).
ktstr_vm_test(test_check_failures_vm SOURCES vm/test_check_failures_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_check_failures_vm ktstr)
endif()
