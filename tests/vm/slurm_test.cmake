# `ktstr test --executor slurm` end to end (labels vm;slurm): a one-node
# Slurm the test starts itself, the crash demo and a passing test through a
# job array into one store and through `--executor local` into another, the
# two stores' verdicts compared, fanotify showing that only the submitter
# opened the store. Needs root and Debian's Slurm and munge (scripts/setup.sh);
# under CI=true their absence, or a kernel's, fails.
ktstr_vm_test(test_slurm_test_vm SOURCES vm/test_slurm_test_vm.cpp LIBS ktstr_db LABELS slurm TIMEOUT 1800)
if(TARGET ktstr)
  add_dependencies(test_slurm_test_vm ktstr)
endif()
