// SPDX-License-Identifier: Apache-2.0
// A command line as the shell will see it, for the rules (cmd.words, cmd.line, cmd.obfuscated):
// one linear pass of POSIX/bash lexing, without running anything.
//
// What it resolves:
//   - quotes: '...', "..." (where \ escapes only $ ` " \ and newline), $"..." as "...";
//   - backslash escapes outside quotes, and backslash-newline (a line continuation) removed;
//   - ANSI-C quoting $'...': \a \b \e \E \f \n \r \t \v \\ \' \" \? \NNN (octal, 1-3 digits),
//     \xHH (1-2 hex digits), \uHHHH, \UHHHHHHHH (as UTF-8), \cX (control character);
//   - brace lists {a,b} (unquoted, with a comma at their own level; nested lists too) in words
//     other than assignments; sequences {1..3} are not expanded;
//   - $NAME and ${NAME} when NAME was assigned a value earlier in the same text (NAME=value as
//     a command of its own, or after export, declare, typeset, local or readonly) or is in
//     `vars` (e.g. the session's earlier assignments). Unknown ones stay as typed (`$x`, or
//     `${x}` where text follows directly); so do ${x:-y} and the like, $(...), `...`, $1, $?;
//   - comments (# at the start of a word, to the end of its line);
//   - here-documents (<<WORD, <<-WORD, any quoting of WORD): when the command is a shell (sh,
//     bash, dash, zsh, ksh, ash, mksh, yash, busybox; by any path, after sudo, env, ...), each
//     body line is normalised on its own, as if typed, and joined in after its command;
//     another command's body is data and left out of the words and the line;
//   - the COMMANDS of a shell's -c (bash -c 'COMMANDS', sh -lc ...): normalised as a line of
//     their own too, appended after the text's own (one level: a -c inside them stays a word);
//     their command names count for `obfuscated`.
// It never fails: an unterminated quote ends at the end of the text, other bytes are kept as
// they are. Time and output are linear in the text: expansions (variables, brace lists) stop
// once they have added more than max(64 KiB, the text's size) bytes, and the rest stays as
// typed.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shaudit::shell {

using Vars = std::map<std::string, std::string, std::less<>>;

// A value longer than this is not recorded as an assignment (it stays $NAME where used).
constexpr size_t kMaxVarValue = 4096;

struct Normalised {
  // The words of every command in the text, in order (operators and redirections not
  // included; redirection targets and here-document delimiters are words).
  std::vector<std::string> words;
  // The text with quotes removed and escapes, brace lists and known variables resolved;
  // operators and redirections kept where they were typed (`>"/etc/x"` is `>/etc/x`), each
  // run of blanks one space, a newline between commands `; `, a word's own tabs and newlines
  // spaces.
  std::string line;
  // The first command name (a command's first word other than assignments) that quoting or
  // expansion builds from pieces: a quote or backslash between two letters or digits
  // (h"istory", "ba"sh, c\url), a $'\x..'/octal/unicode escape, or an expansion glued to a
  // letter, digit or another expansion ($a"sh", ba$x, ${x}sh, $a$b). A whole quoted name
  // ("ls"), \ls, $EDITOR and $HOME/bin/tool are not. Empty when there is none.
  std::string obfuscated;
  // NAME=value assignments the text makes (as a command of their own or after export and its
  // kin), in order, with their values resolved as words are.
  std::vector<std::pair<std::string, std::string>> assignments;
};

Normalised normalise(std::string_view text, const Vars* vars = nullptr);

}  // namespace shaudit::shell
