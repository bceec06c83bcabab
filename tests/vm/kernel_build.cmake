# `ktstr kernel build` from Debian's linux-source imported into a git
# repository: a whole build, the crash demo on it, an incremental rebuild and
# a cache hit (labels vm;slow: a whole kernel build takes 15-40 min on 2
# cores). On a shared host set KTSTR_BUILD_LOCK and KTSTR_VM_LOCK (lock files
# ktstr holds around each make and each QEMU run) rather than holding one lock
# around the whole test. KTSTR_KBUILD_TEST_DIR keeps the repository and store.
ktstr_vm_test(test_kernel_build_vm SOURCES vm/test_kernel_build.cpp LIBS ktstr_kbuild ktstr_db ktstr_core
  PkgConfig::LIBGIT2 LABELS slow TIMEOUT 14400)
if(TARGET ktstr)
  add_dependencies(test_kernel_build_vm ktstr)
endif()

# `ktstr bisect --kernel-repo` on the same imported repository: a branch of
# six commits under kernel/sched/, one of which makes the fixture's dispatch
# fail in the kernel; the bisect names it, and a second one builds nothing.
ktstr_vm_test(test_kernel_bisect_vm SOURCES vm/test_kernel_bisect.cpp LIBS ktstr_kbuild ktstr_db ktstr_core
  PkgConfig::LIBGIT2 LABELS slow TIMEOUT 14400)
if(TARGET ktstr)
  add_dependencies(test_kernel_bisect_vm ktstr)
endif()
