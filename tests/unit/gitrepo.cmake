# gitrepo: libgit2 repositories (real ones, cross-checked with the git CLI);
# schedbuild: scheduler builds and their cache (real cc builds from a git tree).
ktstr_unit_test(test_gitrepo SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gitrepo.cpp
  LIBS ktstr_gitrepo PkgConfig::LIBGIT2)
ktstr_unit_test(test_schedbuild SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_schedbuild.cpp
  LIBS ktstr_schedbuild PkgConfig::LIBGIT2)
