# kbuild: vmlinux extraction and BTF (test_vmlinux), the kernel cache (test_kernel_cache).
# Both need a real kernel image: label `kernel`.
ktstr_unit_test(test_vmlinux SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_vmlinux.cpp
  LIBS ktstr_kbuild LABELS kernel)
ktstr_unit_test(test_kernel_cache SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kernel_cache.cpp
  LIBS ktstr_kbuild ktstr_db LABELS kernel)
# The Debian pool helpers and the offered-kernel ladder: pure, no kernel.
ktstr_unit_test(test_debian_pool SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_debian_pool.cpp LIBS ktstr_kbuild)
# kbuild: config fragments, the required-option check, build keys (pure);
# kernel builds around a stand-in kernel tree (needs a real image: `kernel`).
ktstr_unit_test(test_kconfig SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kconfig.cpp LIBS ktstr_kbuild)
ktstr_unit_test(test_kernel_build SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_kernel_build.cpp
  LIBS ktstr_kbuild ktstr_db PkgConfig::LIBGIT2 LABELS kernel)
