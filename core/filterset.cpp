// Filterset parsing (recursive descent, one function per precedence level)
// and evaluation against a test name.
#include "core/filterset.hpp"

#include "core/matcher.hpp"
#include "core/spec.hpp"

#include <fnmatch.h>

#include <optional>
#include <vector>

namespace ktstr {

struct Filterset::Node {
  enum class Kind { kAll, kNone, kContains, kEqual, kRegex, kGlob, kNot, kAnd, kOr };
  Kind kind = Kind::kAll;
  std::string text;               // the matcher's string, glob or regex
  std::optional<Regex> regex;     // kRegex
  std::shared_ptr<const Node> left, right;  // kNot uses left only
};

namespace {

using Node = Filterset::Node;
using NodePtr = std::shared_ptr<const Node>;

const std::vector<std::string> kPredicates = {"test", "all", "none"};
constexpr const char* kHint = "filters look like 'test(name)', 'test(=exact) | test(/regex/)', 'all() - test(slow)'";

NodePtr leaf(Node::Kind kind, std::string text = {}) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->text = std::move(text);
  return n;
}

NodePtr combine(Node::Kind kind, NodePtr left, NodePtr right = nullptr) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->left = std::move(left);
  n->right = std::move(right);
  return n;
}

bool is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<NodePtr> parse() {
    auto root = parse_or();
    if (!root) return root;
    skip_space();
    if (pos_ < s_.size()) {
      if (s_[pos_] == ')') return error_at("unexpected ')'", pos_);
      return error_at("expected an operator or the end of the filter", pos_);
    }
    return root;
  }

 private:
  tl::unexpected<Error> error_at(const std::string& what, size_t at, std::string hint = kHint) const {
    return fail("invalid filter '" + std::string(s_) + "': " + what + " at offset " + std::to_string(at),
                std::move(hint));
  }

  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  // The keyword `word` at the cursor, not as the start of a longer name.
  bool at_word(std::string_view word) const {
    if (s_.substr(pos_, word.size()) != word) return false;
    size_t after = pos_ + word.size();
    return after == s_.size() || !is_ident_char(s_[after]);
  }

  Result<NodePtr> parse_or() {
    auto left = parse_and();
    while (left) {
      skip_space();
      if (pos_ < s_.size() && (s_[pos_] == '|' || s_[pos_] == '+')) ++pos_;
      else if (at_word("or")) pos_ += 2;
      else break;
      auto right = parse_and();
      if (!right) return right;
      left = combine(Node::Kind::kOr, *left, *right);
    }
    return left;
  }

  Result<NodePtr> parse_and() {
    auto left = parse_unary();
    while (left) {
      skip_space();
      bool difference = false;
      if (pos_ < s_.size() && s_[pos_] == '&') ++pos_;
      else if (pos_ < s_.size() && s_[pos_] == '-') ++pos_, difference = true;
      else if (at_word("and")) pos_ += 3;
      else break;
      auto right = parse_unary();
      if (!right) return right;
      left = combine(Node::Kind::kAnd, *left, difference ? combine(Node::Kind::kNot, *right) : *right);
    }
    return left;
  }

  Result<NodePtr> parse_unary() {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '!') {
      ++pos_;
    } else if (at_word("not")) {
      pos_ += 3;
    } else {
      return parse_primary();
    }
    auto operand = parse_unary();
    if (!operand) return operand;
    return combine(Node::Kind::kNot, *operand);
  }

  Result<NodePtr> parse_primary() {
    skip_space();
    if (pos_ == s_.size()) return error_at("expected an expression", pos_);
    if (s_[pos_] == '(') {
      ++pos_;
      auto inner = parse_or();
      if (!inner) return inner;
      skip_space();
      if (pos_ == s_.size() || s_[pos_] != ')') return error_at("expected ')'", pos_);
      ++pos_;
      return inner;
    }
    if (s_[pos_] == ')') return error_at("unexpected ')'", pos_);
    if (!is_ident_char(s_[pos_]) || at_word("and") || at_word("or")) return error_at("expected an expression", pos_);

    const size_t name_at = pos_;
    while (pos_ < s_.size() && is_ident_char(s_[pos_])) ++pos_;
    const std::string name(s_.substr(name_at, pos_ - name_at));
    if (name != "test" && name != "all" && name != "none") {
      std::string hint = suggest_close(name, kPredicates);
      return error_at("unknown predicate '" + name + "'", name_at,
                      hint.empty() ? "ktstr filters know " + join_quoted(kPredicates) : hint);
    }
    if (pos_ == s_.size() || s_[pos_] != '(') return error_at("expected '(' after '" + name + "'", pos_);
    ++pos_;
    if (name == "test") return parse_name_matcher();
    skip_space();
    if (pos_ == s_.size() || s_[pos_] != ')') return error_at("expected ')'", pos_);
    ++pos_;
    return leaf(name == "all" ? Node::Kind::kAll : Node::Kind::kNone);
  }

  // After "test(": the matcher and its closing ')'.
  Result<NodePtr> parse_name_matcher() {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '/') return parse_regex_matcher();
    Node::Kind kind = Node::Kind::kContains;
    if (pos_ < s_.size() && (s_[pos_] == '=' || s_[pos_] == '~' || s_[pos_] == '#')) {
      kind = s_[pos_] == '=' ? Node::Kind::kEqual : s_[pos_] == '#' ? Node::Kind::kGlob : Node::Kind::kContains;
      ++pos_;
    }
    const size_t text_at = pos_;
    std::string text;
    size_t kept = 0;  // text.size() without trailing spaces
    for (;;) {
      if (pos_ == s_.size()) return error_at("expected ')'", pos_);
      char c = s_[pos_];
      if (c == ')') break;
      if (c == '\\' && pos_ + 1 < s_.size() && (s_[pos_ + 1] == ')' || s_[pos_ + 1] == '\\')) c = s_[++pos_];
      else if (is_space(c) && text.empty()) {
        ++pos_;
        continue;
      }
      text += c;
      ++pos_;
      if (!is_space(c)) kept = text.size();
    }
    text.resize(kept);
    if (text.empty()) return error_at("expected a name matcher", text_at);
    ++pos_;  // ')'
    return leaf(kind, std::move(text));
  }

  // After "test(/": the regex up to an unescaped '/', then ')'.
  Result<NodePtr> parse_regex_matcher() {
    ++pos_;  // the opening '/'
    std::string pattern;
    std::vector<size_t> source_at;  // filter offset of each pattern byte, for error offsets
    for (;;) {
      if (pos_ == s_.size()) return error_at("expected '/' to close the regex", pos_);
      char c = s_[pos_];
      if (c == '/') break;
      if (c == '\\' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '/') c = s_[++pos_];
      else if (c == '\\' && pos_ + 1 < s_.size()) {
        pattern += c;
        source_at.push_back(pos_++);
        c = s_[pos_];
      }
      pattern += c;
      source_at.push_back(pos_++);
    }
    const size_t close_at = pos_++;
    if (pattern.empty()) return error_at("expected a regex between '/' and '/'", close_at);
    auto regex = Regex::try_compile(pattern);
    if (!regex) {
      size_t at = regex.error().offset < source_at.size() ? source_at[regex.error().offset] : close_at;
      return error_at("invalid regex '" + pattern + "': " + regex.error().message, at);
    }
    skip_space();
    if (pos_ == s_.size() || s_[pos_] != ')') return error_at("expected ')'", pos_);
    ++pos_;
    auto node = std::make_shared<Node>();
    node->kind = Node::Kind::kRegex;
    node->text = std::move(pattern);
    node->regex = std::move(*regex);
    return NodePtr(node);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

bool eval(const Node& n, std::string_view name) {
  switch (n.kind) {
    case Node::Kind::kAll: return true;
    case Node::Kind::kNone: return false;
    case Node::Kind::kContains: return name.find(n.text) != std::string_view::npos;
    case Node::Kind::kEqual: return name == n.text;
    case Node::Kind::kRegex: {
      // A regex that gives up on a test name (backtracking limit) selects nothing.
      auto matched = n.regex->is_match(name);
      return matched && *matched;
    }
    case Node::Kind::kGlob: return fnmatch(n.text.c_str(), std::string(name).c_str(), 0) == 0;
    case Node::Kind::kNot: return !eval(*n.left, name);
    case Node::Kind::kAnd: return eval(*n.left, name) && eval(*n.right, name);
    case Node::Kind::kOr: return eval(*n.left, name) || eval(*n.right, name);
  }
  return false;
}

}  // namespace

Result<Filterset> Filterset::parse(std::string_view text) {
  auto root = Parser(text).parse();
  if (!root) return tl::unexpected(root.error());
  return Filterset(std::string(text), std::move(*root));
}

bool Filterset::matches(std::string_view test_name) const { return eval(*root_, test_name); }

}  // namespace ktstr
