// split_command: the user's --build string as argv, POSIX-shell quoting
// without any expansion (no shell ever runs it).
#include "schedbuild/builder.hpp"

namespace ktstr::schedbuild {

Result<std::vector<std::string>> split_command(const std::string& command) {
  const std::string quoted = "'" + command + "'";
  const std::string no_shell_hint =
      "the build command runs without a shell: quote the character, or run a shell yourself, "
      "e.g. --build \"sh -c 'make && strip scx_foo'\"";
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started (even an empty '' one)
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
        if (in_word) words.push_back(std::move(word));
        word.clear();
        in_word = false;
        break;
      case '\\':
        if (i + 1 == command.size())
          return fail("build command " + quoted + " ends with a backslash", "remove it or escape it as '\\\\'");
        ++i;
        if (command[i] != '\n') {  // backslash-newline continues the line
          word += command[i];
          in_word = true;
        }
        break;
      case '\'': {
        const size_t end = command.find('\'', i + 1);
        if (end == std::string::npos)
          return fail("build command " + quoted + " has an unterminated single quote", "close the quote");
        word.append(command, i + 1, end - i - 1);
        in_word = true;
        i = end;
        break;
      }
      case '"': {
        size_t j = i + 1;
        for (; j < command.size() && command[j] != '"'; ++j) {
          // Inside double quotes a backslash escapes only \ " $ ` and newline.
          if (command[j] == '\\' && j + 1 < command.size() && std::string("\\\"$`\n").find(command[j + 1]) != std::string::npos) {
            if (command[j + 1] != '\n') word += command[j + 1];
            ++j;
          } else if (command[j] == '$' || command[j] == '`') {
            // A shell would expand it here; nothing does.
            return fail("build command " + quoted + " uses the shell character '" + std::string(1, command[j]) +
                            "' inside double quotes",
                        "nothing expands it: write the value itself, put it in single quotes, or run a shell "
                        "yourself, e.g. --build \"sh -c 'make CC=$CC'\"");
          } else {
            word += command[j];
          }
        }
        if (j >= command.size())
          return fail("build command " + quoted + " has an unterminated double quote", "close the quote");
        in_word = true;
        i = j;
        break;
      }
      case '|':
      case '&':
      case ';':
      case '<':
      case '>':
      case '(':
      case ')':
      case '$':
      case '`':
        return fail("build command " + quoted + " uses the shell character '" + std::string(1, c) + "'",
                    no_shell_hint);
      default:
        word += c;
        in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return fail("the build command is empty", "give the command that builds the scheduler, e.g. --build 'make -j4'");
  return words;
}

}  // namespace ktstr::schedbuild
