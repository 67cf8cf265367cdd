// SPDX-License-Identifier: Apache-2.0
#include "tty_input.h"

namespace shaudit::daemon {
namespace {

bool continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

size_t TtyLineEditor::prev_char(size_t at) const {
  if (at == 0) return 0;
  --at;
  while (at > 0 && continuation(static_cast<unsigned char>(cur_.text[at]))) --at;
  return at;
}

size_t TtyLineEditor::next_char(size_t at) const {
  if (at >= cur_.text.size()) return cur_.text.size();
  ++at;
  while (at < cur_.text.size() && continuation(static_cast<unsigned char>(cur_.text[at]))) ++at;
  return at;
}

void TtyLineEditor::insert(std::string_view s) {
  if (cur_.text.size() + s.size() > kMaxLine) {
    cur_.cut = true;
    return;
  }
  cur_.text.insert(cursor_, s);
  cursor_ += s.size();
}

void TtyLineEditor::erase_before(size_t from) {
  cur_.text.erase(from, cursor_ - from);
  cursor_ = from;
}

void TtyLineEditor::feed(std::string_view bytes, bool canonical, bool echo,
                         std::vector<Line>& out) {
  for (char ch : bytes) {
    if (cur_.keys.size() < kMaxLine) cur_.keys.push_back(ch);
    if (!canonical) cur_.canonical = false;
    if (!echo && canonical) cur_.echo_off = true;  // (raw-mode editors echo themselves)
    if (bytes.size() > 1) cur_.one_byte = false;
    auto c = static_cast<unsigned char>(ch);
    if (canonical && esc_ == 0) {
      // The terminal edited the line already: every byte is the line's, up to the newline.
      if (c == '\n') {
        out.push_back(std::move(cur_));
        cur_ = Line{};
        cursor_ = 0;
      } else {
        insert(std::string_view(&ch, 1));
      }
      continue;
    }
    key(c, out);
  }
}

void TtyLineEditor::key(unsigned char c, std::vector<Line>& out) {
  if (esc_ == 1) {
    if (c == '[' || c == 'O') {
      esc_ = 2;
      seq_.clear();
    } else {
      esc_ = 0;  // Alt+key (an editor command): not followed
      cur_.unknown_keys = true;
    }
    return;
  }
  if (esc_ == 2) {
    if (c < 0x40 || c > 0x7e) {  // a parameter or intermediate byte
      if (seq_.size() < 16) seq_.push_back(static_cast<char>(c));
      return;
    }
    seq_.push_back(static_cast<char>(c));
    escape_done();
    return;
  }
  switch (c) {
    case '\r':
    case '\n':
      out.push_back(std::move(cur_));
      cur_ = Line{};
      cursor_ = 0;
      return;
    case 0x7f:  // backspace (DEL), and ^H
    case 0x08:
      erase_before(prev_char(cursor_));
      return;
    case 0x15:  // ^U: the line before the cursor
      erase_before(0);
      return;
    case 0x17: {  // ^W: the word before the cursor
      size_t at = cursor_;
      while (at > 0 && cur_.text[at - 1] == ' ') --at;
      while (at > 0 && cur_.text[at - 1] != ' ') --at;
      erase_before(at);
      return;
    }
    case 0x0b:  // ^K: from the cursor to the end
      cur_.text.erase(cursor_);
      return;
    case 0x01:  // ^A
      cursor_ = 0;
      return;
    case 0x05:  // ^E
      cursor_ = cur_.text.size();
      return;
    case 0x02:  // ^B
      cursor_ = prev_char(cursor_);
      return;
    case 0x06:  // ^F
      cursor_ = next_char(cursor_);
      return;
    case 0x04:  // ^D: deletes under the cursor (at the end of an empty line: end of input)
      cur_.text.erase(cursor_, next_char(cursor_) - cursor_);
      return;
    case 0x03: {  // ^C: the line is abandoned, not run
      cur_ = Line{};
      cursor_ = 0;
      return;
    }
    case 0x1b:
      esc_ = 1;
      return;
    default:
      break;
  }
  if (c < 0x20) {  // Tab (completion), ^R, ^P, ^N, ...: what the program made of it is unseen
    cur_.unknown_keys = true;
    return;
  }
  char ch = static_cast<char>(c);
  insert(std::string_view(&ch, 1));
}

void TtyLineEditor::escape_done() {
  esc_ = 0;
  const std::string& s = seq_;
  if (s == "D") {
    cursor_ = prev_char(cursor_);
  } else if (s == "C") {
    cursor_ = next_char(cursor_);
  } else if (s == "H" || s == "1~" || s == "7~") {
    cursor_ = 0;
  } else if (s == "F" || s == "4~" || s == "8~") {
    cursor_ = cur_.text.size();
  } else if (s == "3~") {
    cur_.text.erase(cursor_, next_char(cursor_) - cursor_);
  } else if (s == "200~" || s == "201~") {
    // bracketed paste: the pasted bytes between these are typed text
  } else {
    cur_.unknown_keys = true;  // history (up/down), function keys, ...
  }
}

TtyLineEditor::Line TtyLineEditor::take_partial() {
  Line l = std::move(cur_);
  cur_ = Line{};
  cursor_ = 0;
  esc_ = 0;
  return l;
}

}  // namespace shaudit::daemon
