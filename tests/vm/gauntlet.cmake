# `ktstr gauntlet` in real VMs (label vm): scx_tiny over 2 kernels (the
# default 7.x and 6.17: scripts/ensure-kernel.sh --with-6.17) x 2 argument
# sets, one making it fail: 4 cells of a 2 s scenario.
ktstr_vm_test(test_gauntlet_vm SOURCES vm/test_gauntlet_vm.cpp LIBS ktstr_core TIMEOUT 900)
add_dependencies(test_gauntlet_vm scx_tiny)
if(TARGET ktstr)
  add_dependencies(test_gauntlet_vm ktstr)
endif()
