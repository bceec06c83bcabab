# guest/proto (framing, payloads) and the testable parts of guest/agent.
ktstr_unit_test(test_frame SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_frame.cpp LIBS ktstr_proto)
ktstr_unit_test(test_agent_proto SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agent_proto.cpp LIBS ktstr_agent_lib)
ktstr_unit_test(test_probe_runner SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_probe_runner.cpp LIBS ktstr_agent_lib)
ktstr_unit_test(test_agent_repeat SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agent_repeat.cpp LIBS ktstr_agent_lib)
ktstr_unit_test(test_agent_work SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_agent_work.cpp LIBS ktstr_agent_lib)
ktstr_unit_test(test_verifier_job SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_verifier_job.cpp LIBS ktstr_agent_lib)
ktstr_unit_test(test_file_messages SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_file_messages.cpp LIBS ktstr_proto)
ktstr_unit_test(test_file_receiver SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_file_receiver.cpp LIBS ktstr_agent_lib ktstr_core)
