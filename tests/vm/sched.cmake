# sched_ext schedulers in real VMs (label vm): crash, stall, verifier, clean,
# expect_err, bad map write; and the pin workflow.
ktstr_vm_test(test_sched_crash SOURCES vm/test_sched_crash.cpp LIBS ktstr_core TIMEOUT 1200)
ktstr_vm_test(test_pin_flow SOURCES vm/test_pin_flow.cpp LIBS ktstr_core TIMEOUT 1200)
if(TARGET ktstr)
  add_dependencies(test_sched_crash ktstr)
  add_dependencies(test_pin_flow ktstr)
endif()
