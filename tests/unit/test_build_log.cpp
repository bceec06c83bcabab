// build_error_excerpt: the lines of a failed build's log shown to the user.
#include "core/build_log.hpp"

#include <gtest/gtest.h>

#include <string>

using ktstr::build_error_excerpt;

TEST(BuildLog, ErrorLinesFirstInOrderAndBounded) {
  std::string log =
      "  CC      kernel/sched/core.o\n"
      "kernel/sched/ext.c:12:3: error: boom\n"
      "\n"
      "ld: fatal: cannot open output\n"
      "make[2]: *** [scripts/Makefile.build:243: kernel/sched/ext.o] Error 1\n"
      "main.c:3: Error: expected ';'\n";
  EXPECT_EQ(build_error_excerpt(log, 10),
            "kernel/sched/ext.c:12:3: error: boom\nld: fatal: cannot open output\n"
            "make[2]: *** [scripts/Makefile.build:243: kernel/sched/ext.o] Error 1\nmain.c:3: Error: expected ';'\n");
  EXPECT_EQ(build_error_excerpt(log, 1), "kernel/sched/ext.c:12:3: error: boom\n");
}

TEST(BuildLog, WithoutAnErrorLineTheLastLinesShowHowItEnded) {
  std::string log = "one\n\n  \ntwo\r\nthree\nfour";
  EXPECT_EQ(build_error_excerpt(log, 2), "three\nfour\n");
  EXPECT_EQ(build_error_excerpt(log, 10), "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(build_error_excerpt("", 5), "");
}

TEST(BuildLog, LongLinesAreCut) {
  std::string line(1000, 'x');
  std::string out = build_error_excerpt(line + " error\n", 3);
  EXPECT_EQ(out.size(), 300u + 3 + 1);
  EXPECT_EQ(out.substr(300), "...\n");
}
