# Workload checks (core/checks) in a real VM: one that fails, the rest holding.
ktstr_vm_test(test_checks_vm SOURCES vm/test_checks_vm.cpp LIBS ktstr_core TIMEOUT 600)
target_include_directories(test_checks_vm PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
if(TARGET ktstr)
  add_dependencies(test_checks_vm ktstr)
endif()
