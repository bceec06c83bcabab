# Auto-repro in real VMs (label vm): replay with probes, not reproduced, the
# 6.17 fallback trigger.
ktstr_vm_test(test_repro SOURCES vm/test_repro.cpp LIBS ktstr_db TIMEOUT 1800)
if(TARGET ktstr)
  add_dependencies(test_repro ktstr)
endif()
