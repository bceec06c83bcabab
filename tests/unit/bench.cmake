# ktstr-bench-vm's command line: --help prints usage (exit 0) instead of
# running the benchmark; bad arguments are an error + hint (exit 2).
# bench/ is added after tests/ (generator expressions resolve later).
add_test(NAME bench_vm_help COMMAND sh -c
  "out=$(\"$1\" --help) && echo \"$out\" | grep -q '^usage: ktstr-bench-vm' && \"$1\" -h | grep -q 'REPS'"
  sh $<TARGET_FILE:ktstr-bench-vm>)
add_test(NAME bench_vm_bad_args COMMAND sh -c
  "for a in --reps abc 0 '3 4'; do err=$(\"$1\" $a 2>&1 >/dev/null); st=$?; [ $st -eq 2 ] || exit 1; echo \"$err\" | grep -q '^ktstr-bench-vm: error: ' || exit 1; echo \"$err\" | grep -q '^hint: ' || exit 1; done"
  sh $<TARGET_FILE:ktstr-bench-vm>)
set_tests_properties(bench_vm_help bench_vm_bad_args PROPERTIES LABELS unit TIMEOUT 30)
