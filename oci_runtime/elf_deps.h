// SPDX-License-Identifier: Apache-2.0
// What the dynamic loader checks before it maps a library into a process: its machine, the
// libraries it needs and the symbol versions it needs from each (GLIBC_2.34 ...), and the
// versions a library defines. The wrapper compares the interposer's needs with an image's
// libc before it preloads the interposer there: glibc refuses to run a program whose
// preloaded library needs a version its libc lacks, which would stop every process in a
// container whose libc is older than the host's.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "shaudit/result.h"

namespace shaudit::oci {

struct ElfDeps {
  uint16_t machine = 0;             // e_machine
  uint8_t elf_class = 0;            // ELFCLASS32 or ELFCLASS64
  std::vector<std::string> needed;  // DT_NEEDED, in order
  // DT_VERNEED: each needed file and the version names needed from it.
  std::vector<std::pair<std::string, std::vector<std::string>>> version_needs;
  std::vector<std::string> version_defs;  // DT_VERDEF names (the first is the soname)
};

// Reads the ELF header (any class, either byte order) and, for a 64-bit file in this
// machine's byte order, the dynamic section's needs and definitions. fd: open for reading.
Result<ElfDeps> read_elf_deps(int fd);

// The machine's name for messages ("x86-64", "AArch64", or "machine 183").
std::string elf_machine_name(uint16_t machine);

// The Debian multiarch directory name of a machine's glibc (x86_64-linux-gnu), or empty.
std::string multiarch_triplet(uint16_t machine);

}  // namespace shaudit::oci
