# `ktstr test --jobs 2` in real VMs (label vm): two short EEVDF tests in two
# VMs at once, both stored, printed in spec order, their runs overlapping.
ktstr_vm_test(test_jobs_vm SOURCES vm/test_jobs_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_jobs_vm ktstr)
endif()
