// SPDX-License-Identifier: Apache-2.0
// What an image's programs are linked against, read from its root filesystem: the dynamic
// loader decides which interposer can be preloaded there, if any, and how.
#pragma once

#include <string>

#include "rootfs.h"
#include "shaudit/result.h"

namespace shaudit::oci {

enum class Libc {
  kGlibc,  // ld-linux*.so*: reads /etc/ld.so.preload
  kMusl,   // ld-musl-*.so.1: reads only $LD_PRELOAD
  kNone,   // no dynamic loader: statically linked programs only (busybox-static, distroless/static)
};
const char* libc_name(Libc l);  // "glibc", "musl", "none": the shaudit.io/interposer value

struct Loader {
  Libc libc = Libc::kNone;
  std::string path;  // in the image, e.g. /lib64/ld-linux-x86-64.so.2
};

// musl when /lib/ld-musl-*.so.1 is there (Alpine's gcompat adds a glibc-named loader that is
// musl's), else glibc when /lib64/ld-linux-x86-64.so.2 or /lib/ld-linux*.so* is, else none.
Result<Loader> find_loader(const RootFs& root);

// Why the interposer at host path `interposer` cannot be loaded by the image's programs, or
// empty when it can: another machine than the image's loader, or (glibc) a library it needs
// that the image lacks, or a symbol version the image's library lacks (the interposer built
// on a host with glibc 2.36 needs GLIBC_2.34; glibc stops every program whose preloaded
// library needs a version its libc does not have). An error when the interposer cannot be
// read or is not an ELF file.
Result<std::string> preload_problem(const RootFs& root, const Loader& loader,
                                    const std::string& interposer);

}  // namespace shaudit::oci
