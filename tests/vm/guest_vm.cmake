# VM tests of guest/vm: boot a real kernel under QEMU with a tiny static init.

# PID 1 of the test VMs: static, so the initramfs needs nothing else.
add_executable(ktstr_vm_test_init ${CMAKE_CURRENT_LIST_DIR}/vm_test_init.c)
target_link_options(ktstr_vm_test_init PRIVATE -static)
ktstr_guest_binary(ktstr_vm_test_init)  # it is the guest's init

ktstr_vm_test(test_vm_boot SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_vm_boot.cpp
  LIBS ktstr_vm ktstr_initramfs TIMEOUT 420)
add_dependencies(test_vm_boot ktstr_vm_test_init)
target_compile_definitions(test_vm_boot PRIVATE KTSTR_VM_TEST_INIT="$<TARGET_FILE:ktstr_vm_test_init>")
