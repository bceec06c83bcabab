# The crash demo with auto-repro on one kernel per series the Debian archive
# offers (labels vm;slow: on demand; uses the cached kernels and fetches only the
# missing ones, into KTSTR_CACHE_DIR or the default cache).
ktstr_vm_test(test_kernel_matrix SOURCES vm/test_kernel_matrix.cpp LIBS ktstr_kbuild ktstr_db ktstr_core
  LABELS slow TIMEOUT 7200)
if(TARGET ktstr)
  add_dependencies(test_kernel_matrix ktstr)
endif()
