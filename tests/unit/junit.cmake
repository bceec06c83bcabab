# run/junit: JUnit XML read back with libxml2 and validated against
# tests/data/junit/junit.xsd; a bad --junit path through the real binary.
ktstr_unit_test(test_junit SOURCES unit/test_junit.cpp LIBS ktstr_run PkgConfig::LIBXML2)
if(TARGET ktstr)
  add_dependencies(test_junit ktstr)
endif()
