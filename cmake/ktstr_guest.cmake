# Targets that run inside the guest. In the sanitizer tree (KTSTR_SANITIZE)
# every other target is built with ASan+UBSan; these stay plain, because the
# guest has no sanitizer runtime and ASan cannot link -static.
# Included by the root CMakeLists.txt and by fuzz/CMakeLists.txt.

# ktstr_guest_binary(<target>...): runs inside the guest, never sanitized.
function(ktstr_guest_binary)
  set_target_properties(${ARGN} PROPERTIES KTSTR_GUEST ON)
endfunction()

# ktstr_guest_library(<name> SOURCES ... [INCLUDES ...] [LIBS ...] [GUEST_LIBS ...])
# A static library used on both sides: <name> for the host, and <name>_guest
# for static guest binaries, which links the _guest variants of GUEST_LIBS.
# Without KTSTR_SANITIZE both sides are the same objects (an ALIAS).
function(ktstr_guest_library name)
  cmake_parse_arguments(L "" "" "SOURCES;INCLUDES;LIBS;GUEST_LIBS" ${ARGN})
  add_library(${name} STATIC ${L_SOURCES})
  target_include_directories(${name} PUBLIC ${L_INCLUDES})
  target_link_libraries(${name} PUBLIC ${L_LIBS} ${L_GUEST_LIBS})
  if(KTSTR_SANITIZE)
    add_library(${name}_guest STATIC ${L_SOURCES})
    ktstr_guest_binary(${name}_guest)
    target_include_directories(${name}_guest PUBLIC ${L_INCLUDES})
    list(TRANSFORM L_GUEST_LIBS APPEND _guest)
    target_link_libraries(${name}_guest PUBLIC ${L_LIBS} ${L_GUEST_LIBS})
  else()
    add_library(${name}_guest ALIAS ${name})
  endif()
endfunction()
