// SPDX-License-Identifier: Apache-2.0
// Lines rebuilt from the bytes a program read from its terminal, as the kernel handed them to
// it (bpf/proc.h SA_EV_INPUT): the never-silent path for programs whose typed lines no
// interposer captures exactly.
//
// In canonical mode the terminal applied the editing keys itself (erase, kill, word erase):
// what the program read is the line, exactly. In raw mode (a line editor: fish, busybox ash,
// a REPL) it read keys; the line is rebuilt best-effort from printable characters (UTF-8),
// backspace, ^U, ^W, ^K, ^A/^E, Home/End, Delete and the cursor keys left/right. Keys it cannot
// follow (history recall, completion, other escape sequences) are kept in the raw keys and the
// line says `unknown_keys`. Enter (CR or LF) ends a line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace shaudit::daemon {

class TtyLineEditor {
 public:
  static constexpr size_t kMaxLine = 16384;  // bytes of a line (and of its keys) kept

  struct Line {
    std::string text;           // the line as rebuilt
    std::string keys;           // the bytes as read (raw mode: the keys typed)
    bool canonical = true;      // every read of it was in canonical mode: text is exact
    bool unknown_keys = false;  // raw-mode keys the rebuild could not follow
    bool cut = false;           // longer than kMaxLine
    bool one_byte = true;       // it came one byte per read (a shell's `read` builtin does so)
    bool echo_off = false;      // some of it was read in canonical mode with echo off
  };

  // Bytes of one read. Completed lines are appended to out.
  void feed(std::string_view bytes, bool canonical, bool echo, std::vector<Line>& out);
  // Something was typed since the last line.
  bool pending() const { return !cur_.keys.empty(); }
  // What was typed without an Enter (at exit or exec), and a fresh start.
  Line take_partial();

 private:
  void key(unsigned char c, std::vector<Line>& out);
  void escape_done();
  void insert(std::string_view s);
  void erase_before(size_t n);
  size_t prev_char(size_t at) const;
  size_t next_char(size_t at) const;

  Line cur_;
  size_t cursor_ = 0;
  int esc_ = 0;  // 0: none; 1: after ESC; 2: in a CSI (ESC [) or SS3 (ESC O) sequence
  std::string seq_;
};

}  // namespace shaudit::daemon
