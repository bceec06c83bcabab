# cmd/completion: `ktstr completion bash|zsh|fish` loaded in real shells
# against a store holding a kernel and a crash.
ktstr_unit_test(test_completion SOURCES unit/test_completion.cpp LIBS ktstr_db)
if(TARGET ktstr)
  add_dependencies(test_completion ktstr)
endif()
