# The KVM -> TCG fallback with a fake QEMU (tests/vm/fake_qemu.sh) that fails
# under `-accel kvm` and runs the real QEMU otherwise (label vm).
set(KTSTR_FAKE_QEMU ${CMAKE_CURRENT_BINARY_DIR}/fake-qemu/qemu-system-x86_64)
file(COPY ${CMAKE_CURRENT_LIST_DIR}/fake_qemu.sh DESTINATION ${CMAKE_CURRENT_BINARY_DIR}/fake-qemu
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(RENAME ${CMAKE_CURRENT_BINARY_DIR}/fake-qemu/fake_qemu.sh ${KTSTR_FAKE_QEMU})

ktstr_vm_test(test_accel_fallback SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_accel_fallback.cpp
  LIBS ktstr_vm ktstr_initramfs TIMEOUT 900)
add_dependencies(test_accel_fallback ktstr_vm_test_init)
target_compile_definitions(test_accel_fallback PRIVATE
  KTSTR_VM_TEST_INIT="$<TARGET_FILE:ktstr_vm_test_init>" KTSTR_FAKE_QEMU="${KTSTR_FAKE_QEMU}")
if(TARGET ktstr)
  add_dependencies(test_accel_fallback ktstr)
endif()
