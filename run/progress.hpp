// One updating progress line on a terminal (stderr), silent otherwise or
// under --json. Kernel fetch, boot and scenario stages report through it.
#pragma once

#include <string>

namespace ktstr::runner {

class Progress {
 public:
  explicit Progress(bool enabled);
  ~Progress();
  void update(const std::string& text);   // replaces the current line
  void clear();                           // erase it before printing results

 private:
  bool enabled_;
  bool shown_ = false;
};

}  // namespace ktstr::runner
