// SPDX-License-Identifier: Apache-2.0
#include "elf_deps.h"

#include <elf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shaudit::oci {
namespace {

// Bounds on what is read from a file that may come from any image.
constexpr uint64_t kMaxTable = 1 << 20;  // bytes of a dynamic section or string table
constexpr unsigned kMaxEntries = 4096;   // version entries, program headers

bool host_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

Result<void> read_at(int fd, uint64_t off, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("read: {}", std::strerror(errno)));
    if (n == 0) return make_error("truncated ELF file");
    p += n;
    off += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return {};
}

template <class T>
Result<T> read_struct(int fd, uint64_t off) {
  T v;
  if (auto r = read_at(fd, off, &v, sizeof v); !r) return r.error();
  return v;
}

// The 64-bit dynamic section read through the file's load segments.
class Dynamic {
 public:
  Result<void> load(int fd, const Elf64_Ehdr& eh) {
    fd_ = fd;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > kMaxEntries)
      return make_error("unexpected program header table");
    uint64_t dyn_off = 0, dyn_size = 0;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      auto ph = read_struct<Elf64_Phdr>(fd, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
      if (!ph) return ph.error();
      if (ph->p_type == PT_LOAD) loads_.push_back(*ph);
      if (ph->p_type == PT_DYNAMIC) {
        dyn_off = ph->p_offset;
        dyn_size = ph->p_filesz;
      }
    }
    if (dyn_size == 0) return {};  // static: no dynamic section
    if (dyn_size > kMaxTable) return make_error("dynamic section too large");
    dyn_.resize(dyn_size / sizeof(Elf64_Dyn));
    if (auto r = read_at(fd, dyn_off, dyn_.data(), dyn_.size() * sizeof(Elf64_Dyn)); !r) return r;
    uint64_t strtab = 0, strsz = 0;
    for (const auto& d : dyn_) {
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
      if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
    }
    if (strsz == 0) return {};
    if (strsz > kMaxTable) return make_error("string table too large");
    auto off = file_offset(strtab, strsz);
    if (!off) return off.error();
    strings_.resize(strsz);
    return read_at(fd, *off, strings_.data(), strsz);
  }

  std::vector<uint64_t> values(int64_t tag) const {
    std::vector<uint64_t> out;
    for (const auto& d : dyn_) {
      if (d.d_tag == DT_NULL) break;
      if (d.d_tag == tag) out.push_back(d.d_un.d_val);
    }
    return out;
  }

  Result<std::string> string_at(uint64_t index) const {
    if (index >= strings_.size()) return make_error("string index out of range");
    size_t end = strings_.find('\0', index);
    if (end == std::string::npos) return make_error("unterminated string");
    return strings_.substr(index, end - index);
  }

  // Where the bytes at a virtual address are in the file.
  Result<uint64_t> file_offset(uint64_t vaddr, uint64_t len) const {
    for (const auto& ph : loads_) {
      if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr <= ph.p_filesz &&
          len <= ph.p_filesz - (vaddr - ph.p_vaddr))
        return ph.p_offset + (vaddr - ph.p_vaddr);
    }
    return make_error("address outside the file's load segments");
  }

  // One entry of a version table, at a virtual address.
  template <class T>
  Result<T> entry(uint64_t vaddr) const {
    auto off = file_offset(vaddr, sizeof(T));
    if (!off) return off.error();
    return read_struct<T>(fd_, *off);
  }

 private:
  int fd_ = -1;
  std::vector<Elf64_Phdr> loads_;
  std::vector<Elf64_Dyn> dyn_;
  std::string strings_;
};

Result<void> read_versions(const Dynamic& dyn, ElfDeps& out) {
  auto first = [&](int64_t tag) -> uint64_t {
    auto v = dyn.values(tag);
    return v.empty() ? 0 : v.front();
  };
  // DT_VERNEED: Elf64_Verneed entries, each with vn_cnt Elf64_Vernaux.
  uint64_t need = first(DT_VERNEED), need_num = first(DT_VERNEEDNUM);
  if (need_num > kMaxEntries) return make_error("too many version needs");
  for (uint64_t i = 0, at = need; i < need_num; ++i) {
    auto vn = dyn.entry<Elf64_Verneed>(at);
    if (!vn) return vn.error();
    auto file = dyn.string_at(vn->vn_file);
    if (!file) return file.error();
    std::vector<std::string> names;
    if (vn->vn_cnt > kMaxEntries) return make_error("too many version needs");
    for (uint64_t j = 0, aux = at + vn->vn_aux; j < vn->vn_cnt; ++j) {
      auto va = dyn.entry<Elf64_Vernaux>(aux);
      if (!va) return va.error();
      auto name = dyn.string_at(va->vna_name);
      if (!name) return name.error();
      names.push_back(*name);
      if (va->vna_next == 0) break;
      aux += va->vna_next;
    }
    out.version_needs.emplace_back(*file, std::move(names));
    if (vn->vn_next == 0) break;
    at += vn->vn_next;
  }
  // DT_VERDEF: Elf64_Verdef entries; the first Elf64_Verdaux of each names the version.
  uint64_t def = first(DT_VERDEF), def_num = first(DT_VERDEFNUM);
  if (def_num > kMaxEntries) return make_error("too many version definitions");
  for (uint64_t i = 0, at = def; i < def_num; ++i) {
    auto vd = dyn.entry<Elf64_Verdef>(at);
    if (!vd) return vd.error();
    if (vd->vd_cnt > 0) {
      auto va = dyn.entry<Elf64_Verdaux>(at + vd->vd_aux);
      if (!va) return va.error();
      auto name = dyn.string_at(va->vda_name);
      if (!name) return name.error();
      out.version_defs.push_back(*name);
    }
    if (vd->vd_next == 0) break;
    at += vd->vd_next;
  }
  return {};
}

}  // namespace

Result<ElfDeps> read_elf_deps(int fd) {
  unsigned char ident[EI_NIDENT + 4];  // e_ident, e_type, e_machine: the same in both classes
  if (auto r = read_at(fd, 0, ident, sizeof ident); !r)
    return make_error("not an ELF file (too short)");
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) return make_error("not an ELF file");
  ElfDeps out;
  out.elf_class = ident[EI_CLASS];
  const bool little = ident[EI_DATA] == ELFDATA2LSB;
  if (!little && ident[EI_DATA] != ELFDATA2MSB) return make_error("unknown ELF byte order");
  const unsigned char* m = ident + EI_NIDENT + 2;
  out.machine = little ? static_cast<uint16_t>(m[0] | (m[1] << 8))
                       : static_cast<uint16_t>((m[0] << 8) | m[1]);
  if (out.elf_class != ELFCLASS64 || little != host_little_endian()) return out;
  auto eh = read_struct<Elf64_Ehdr>(fd, 0);
  if (!eh) return eh.error();
  Dynamic dyn;
  if (auto r = dyn.load(fd, *eh); !r) return r.error();
  for (uint64_t idx : dyn.values(DT_NEEDED)) {
    auto name = dyn.string_at(idx);
    if (!name) return name.error();
    out.needed.push_back(*name);
  }
  if (auto r = read_versions(dyn, out); !r) return r.error();
  return out;
}

std::string elf_machine_name(uint16_t machine) {
  switch (machine) {
    case EM_X86_64:
      return "x86-64";
    case EM_AARCH64:
      return "AArch64";
    case EM_386:
      return "i386";
    case EM_ARM:
      return "ARM";
    case EM_PPC64:
      return "PowerPC64";
    case EM_S390:
      return "s390";
    case EM_RISCV:
      return "RISC-V";
    default:
      return fmt::format("machine {}", machine);
  }
}

std::string multiarch_triplet(uint16_t machine) {
  switch (machine) {
    case EM_X86_64:
      return "x86_64-linux-gnu";
    case EM_AARCH64:
      return "aarch64-linux-gnu";
    case EM_386:
      return "i386-linux-gnu";
    case EM_ARM:
      return "arm-linux-gnueabihf";
    case EM_PPC64:
      return "powerpc64le-linux-gnu";
    case EM_S390:
      return "s390x-linux-gnu";
    case EM_RISCV:
      return "riscv64-linux-gnu";
    default:
      return {};
  }
}

}  // namespace shaudit::oci
