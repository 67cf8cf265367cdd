// SPDX-License-Identifier: Apache-2.0
// Host file helpers of the wrapper: whole small files in and out, a file replaced atomically.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "shaudit/result.h"

namespace shaudit::oci {

// A regular file's contents (at most max bytes, more is an error).
Result<std::string> read_small_file(const std::string& path, size_t max);

struct Owner {
  uid_t uid;
  gid_t gid;
};
// Replaces path with data: a temporary file in the same directory, written, given mode (and
// owner when one is named), synced and renamed over path. On error path is as it was.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               std::optional<Owner> owner = std::nullopt);

// Creates a directory and its missing parents with mode (existing ones are left alone).
Result<void> make_dirs(const std::string& path, mode_t mode);

// "/a/b" of "/a/b/c", "/" of "/c", "." of "c"; the last component of a path.
std::string dir_name(std::string_view path);
std::string base_name(std::string_view path);

// path made absolute against "/" and cleaned lexically (Go's filepath.Clean): no ".", "..",
// repeated or trailing slashes.
std::string clean_path(std::string_view path);
// Whether ancestor is a proper ancestor directory of path (both clean).
bool is_proper_ancestor(std::string_view ancestor, std::string_view path);

}  // namespace shaudit::oci
