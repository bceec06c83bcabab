# `ktstr test` end to end in real VMs (label vm).
ktstr_vm_test(test_ktstr_test SOURCES vm/test_ktstr_test.cpp LIBS ktstr_core TIMEOUT 900)
if(TARGET ktstr)
  add_dependencies(test_ktstr_test ktstr)
endif()
