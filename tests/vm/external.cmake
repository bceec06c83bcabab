# An external, dynamically linked sched_ext scheduler (tests/sched/scx_tiny)
# run by path through `ktstr test`, plus the pre-boot checks on a scheduler
# path (not executable, needed library missing).
add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/sched ${CMAKE_CURRENT_BINARY_DIR}/sched)

ktstr_vm_test(test_external_sched SOURCES vm/test_external_sched.cpp LIBS ktstr_core TIMEOUT 900)
add_dependencies(test_external_sched scx_tiny ktstr_needs_tinydep)
if(TARGET ktstr)
  add_dependencies(test_external_sched ktstr)
endif()

# One scheduler built in two directories (tests/sched: checkout-a/, checkout-b/):
# one crash signature, and the pinned test holds across the builds.
ktstr_vm_test(test_checkout_signature SOURCES vm/test_checkout_signature.cpp LIBS ktstr_core TIMEOUT 900)
add_dependencies(test_checkout_signature scx_tiny_checkout_a scx_tiny_checkout_b)

# A scheduler reading CONFIG_HZ through a libbpf __kconfig extern loads in the
# guest (ktstr puts the kernel's config at /boot/config-<release>).
ktstr_vm_test(test_kconfig_sched SOURCES vm/test_kconfig_sched.cpp LIBS ktstr_core TIMEOUT 900)
add_dependencies(test_kconfig_sched scx_hz)
if(TARGET ktstr)
  add_dependencies(test_checkout_signature ktstr)
  add_dependencies(test_kconfig_sched ktstr)
endif()
