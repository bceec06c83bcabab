# `ktstr kernel build` from Debian's linux-source imported into a git
# repository: a whole build, the crash demo on it, an incremental rebuild and
# a cache hit (labels vm;slow: a kernel build takes 15-25 min on 2 cores; run
# it under `flock /tmp/ktstr-heavy.lock`).
ktstr_vm_test(test_kernel_build_vm SOURCES vm/test_kernel_build.cpp LIBS ktstr_kbuild ktstr_db ktstr_core
  PkgConfig::LIBGIT2 LABELS slow TIMEOUT 14400)
target_include_directories(test_kernel_build_vm PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
if(TARGET ktstr)
  add_dependencies(test_kernel_build_vm ktstr)
endif()
