# Unit tests of guest/vm (QEMU command line, accelerator choice, snapshots, QMP) and guest/initramfs.

ktstr_unit_test(test_qemu_args SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_qemu_args.cpp LIBS ktstr_vm)
ktstr_unit_test(test_initramfs SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_initramfs.cpp LIBS ktstr_initramfs PkgConfig::LIBARCHIVE)
ktstr_unit_test(test_vm_work_dir SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_vm_work_dir.cpp LIBS ktstr_vm)
ktstr_unit_test(test_vm_snapshot SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_vm_snapshot.cpp LIBS ktstr_vm)
ktstr_unit_test(test_qmp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_qmp.cpp LIBS ktstr_vm)
