// SPDX-License-Identifier: Apache-2.0
// Listening Unix sockets for shauditd.
#pragma once

#include <string>

#include "shaudit/result.h"

namespace shaudit::daemon {

// Linux 6.5+ (not yet in glibc 2.36's headers): a pidfd of the sender with each message.
inline constexpr int kSoPassPidfd = 76;  // SO_PASSPIDFD
inline constexpr int kScmPidfd = 0x04;   // SCM_PIDFD

// The directory a socket lives in ("." for a bare name): the session table (sessions/) and the
// kernel flag file (kernel) sit beside the socket.
std::string socket_dir(const std::string& socket);

// Creates the missing directories above path (like mkdir -p of its parent) with mode.
Result<void> make_parent_dirs(const std::string& path, unsigned mode);

// True when a process accepts connections on the socket at path (a live daemon).
bool socket_is_live(const std::string& path, int type);

// Creates the parent directory (0755), replaces a stale socket file, refuses a live one,
// binds and listens (non-blocking, close-on-exec) with the given mode and group.
Result<int> make_socket(const std::string& path, int type, unsigned mode, const std::string& group);

}  // namespace shaudit::daemon
