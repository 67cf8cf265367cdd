// SPDX-License-Identifier: Apache-2.0
// Looks at a container's root filesystem from the host without leaving it: every path is
// resolved inside the root (an absolute symlink or ".." in the image stays in the image, as
// openat2's RESOLVE_IN_ROOT does; kernels without openat2 get the same walk done here), and
// only regular files are read, through a descriptor of the inode that was checked (an image
// may hold FIFOs and device nodes where a file is expected).
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "internal/fd.h"
#include "shaudit/result.h"

namespace shaudit::oci {

class RootFs {
 public:
  // how: kAuto uses openat2 where the kernel has it; kWalk always the walk done here.
  enum class Resolver { kAuto, kWalk };
  static Result<RootFs> open(const std::string& path, Resolver how = Resolver::kAuto);

  struct Entry {
    internal::UniqueFd fd;  // O_PATH
    struct stat st;
  };
  // The inode at `path` (absolute, inside the root); nullopt when it does not exist.
  Result<std::optional<Entry>> lookup(std::string_view path) const;
  // A regular file's contents, at most max bytes (more is an error); nullopt when missing.
  Result<std::optional<std::string>> read_file(std::string_view path, size_t max) const;
  // A regular file opened for reading; nullopt when missing.
  Result<std::optional<internal::UniqueFd>> open_file(std::string_view path) const;
  // The names in a directory; empty when it does not exist.
  Result<std::vector<std::string>> list_dir(std::string_view path) const;

  const std::string& path() const { return path_; }

 private:
  RootFs(std::string path, internal::UniqueFd fd, Resolver how)
      : path_(std::move(path)), fd_(std::move(fd)), how_(how) {}
  Result<internal::UniqueFd> resolve(std::string_view path) const;  // errno in the message
  Result<internal::UniqueFd> walk(std::string_view path) const;

  std::string path_;
  internal::UniqueFd fd_;  // O_PATH | O_DIRECTORY
  Resolver how_;
};

// Opens an O_PATH descriptor again for reading (through /proc/self/fd).
Result<internal::UniqueFd> reopen(int path_fd, int flags);

}  // namespace shaudit::oci
