// `ktstr test -E FILTER`: which tests to run, in cargo-nextest's filterset
// language restricted to what a ktstr test has (a name).
//
//   test(M)        tests whose name matches the name matcher M:
//                    foo / ~foo   name contains "foo" (the default)
//                    =foo         name is exactly "foo"
//                    /re/         name matches the regex (core/matcher.hpp
//                                 semantics, unanchored; "\/" is a '/')
//                    #glob        name matches the glob (fnmatch: * ? [..])
//                  In M, "\)" is a ')' and "\\" a '\'; spaces around M
//                  are dropped. An empty M is an error.
//   all(), none()  every test, no test
//   not X, !X      complement
//   X and Y, X & Y intersection;  X - Y  is X and not Y
//   X or Y, X | Y, X + Y          union
//   ( X )          grouping
// Precedence, tightest first: not, then and/&/-, then or/|/+; binary
// operators associate to the left ("a - b - c" is "(a - b) - c").
#pragma once

#include "core/result.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace ktstr {

class Filterset {
 public:
  // Errors read "invalid filter 'test(foo': expected ')' at offset 8", the
  // offset in bytes of `text`.
  static Result<Filterset> parse(std::string_view text);

  bool matches(std::string_view test_name) const;

  // The text it was parsed from.
  const std::string& text() const { return text_; }

  struct Node;  // the parsed expression (filterset.cpp)

 private:
  Filterset(std::string text, std::shared_ptr<const Node> root) : text_(std::move(text)), root_(std::move(root)) {}

  std::string text_;
  std::shared_ptr<const Node> root_;
};

}  // namespace ktstr
