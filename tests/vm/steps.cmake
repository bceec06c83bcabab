# Steps (cgroup moves, cpuset changes, hotplug) and cgroup weights in a real VM:
# max_weight_error_pct fails and passes, isolation follows set_cpus and a move.
# Three 2 s EEVDF boots (about 50 s of TCG).
ktstr_vm_test(test_steps_vm SOURCES vm/test_steps_vm.cpp LIBS ktstr_core TIMEOUT 600)
if(TARGET ktstr)
  add_dependencies(test_steps_vm ktstr)
endif()
