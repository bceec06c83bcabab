# `ktstr bisect` in real VMs on a generated scheduler repository
# (tests/sched/bisect/): p = 1 with SIGKILL + resume, p = 0.5, and a bad end
# that does not reproduce. The kernel-version ladder is test_bisect_kernels
# (slow: it needs three cached kernel versions).
ktstr_vm_test(test_bisect SOURCES vm/test_bisect.cpp LIBS ktstr_core PkgConfig::LIBGIT2 TIMEOUT 1800)
target_compile_definitions(test_bisect PRIVATE
  KTSTR_TEST_CLANG="${KTSTR_BPF_CLANG}"
  KTSTR_TEST_BPFTOOL="${KTSTR_BPFTOOL}"
  KTSTR_TEST_BPF_INCLUDE="${KTSTR_BPF_INCLUDE_DIR}"
  KTSTR_TEST_LIBBPF_INCLUDE="${KTSTR_TOOLS_DIR}/libbpf/include"
  KTSTR_TEST_LIBBPF_A="${LIBBPF_STATIC}")
if(TARGET ktstr)
  add_dependencies(test_bisect ktstr)
endif()

ktstr_vm_test(test_bisect_kernels SOURCES vm/test_bisect_kernels.cpp LIBS ktstr_core TIMEOUT 3600 LABELS slow)
target_compile_definitions(test_bisect_kernels PRIVATE
  KTSTR_TEST_CLANG="${KTSTR_BPF_CLANG}"
  KTSTR_TEST_BPFTOOL="${KTSTR_BPFTOOL}"
  KTSTR_TEST_BPF_INCLUDE="${KTSTR_BPF_INCLUDE_DIR}"
  KTSTR_TEST_LIBBPF_INCLUDE="${KTSTR_TOOLS_DIR}/libbpf/include"
  KTSTR_TEST_LIBBPF_A="${LIBBPF_STATIC}")
if(TARGET ktstr)
  add_dependencies(test_bisect_kernels ktstr)
endif()
