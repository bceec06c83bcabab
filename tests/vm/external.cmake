# An external, dynamically linked sched_ext scheduler (tests/sched/scx_tiny)
# run by path through `ktstr test`, plus the pre-boot checks on a scheduler
# path (not executable, needed library missing).
add_subdirectory(${CMAKE_CURRENT_SOURCE_DIR}/sched ${CMAKE_CURRENT_BINARY_DIR}/sched)

ktstr_vm_test(test_external_sched SOURCES vm/test_external_sched.cpp LIBS ktstr_core TIMEOUT 900)
target_include_directories(test_external_sched PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(test_external_sched scx_tiny ktstr_needs_tinydep)
if(TARGET ktstr)
  add_dependencies(test_external_sched ktstr)
endif()
