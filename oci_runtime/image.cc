// SPDX-License-Identifier: Apache-2.0
#include "image.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "elf_deps.h"

namespace shaudit::oci {

using internal::UniqueFd;

const char* libc_name(Libc l) {
  switch (l) {
    case Libc::kGlibc:
      return "glibc";
    case Libc::kMusl:
      return "musl";
    case Libc::kNone:
      return "none";
  }
  return "none";
}

namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}

// Whether path is a regular file in the image (symlinks followed inside it).
Result<bool> is_file(const RootFs& root, const std::string& path) {
  auto e = root.lookup(path);
  if (!e) return e.error();
  return *e && S_ISREG((*e)->st.st_mode);
}

// The first name in /lib that matches, and is a file, in name order.
Result<std::string> find_in_lib(const RootFs& root, std::string_view prefix,
                                std::string_view must_contain, std::string_view suffix) {
  auto names = root.list_dir("/lib");
  if (!names) return names.error();
  std::sort(names->begin(), names->end());
  for (const auto& n : *names) {
    if (!starts_with(n, prefix) || !ends_with(n, suffix) ||
        n.find(must_contain, prefix.size()) == std::string::npos)
      continue;
    auto f = is_file(root, "/lib/" + n);
    if (!f) return f.error();
    if (*f) return "/lib/" + n;
  }
  return std::string();
}

Result<ElfDeps> image_elf(const RootFs& root, const std::string& path) {
  auto fd = root.open_file(path);
  if (!fd) return fd.error();
  if (!*fd) return make_error(fmt::format("{} is not in the image", path));
  auto deps = read_elf_deps((*fd)->get());
  if (!deps) return make_error(fmt::format("{} in the image: {}", path, deps.message()));
  return deps;
}

// Where glibc's loader finds a library by default, for the image's machine.
std::vector<std::string> library_dirs(uint16_t machine) {
  std::vector<std::string> dirs;
  if (std::string t = multiarch_triplet(machine); !t.empty()) {
    dirs.push_back("/lib/" + t);
    dirs.push_back("/usr/lib/" + t);
  }
  for (const char* d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) dirs.emplace_back(d);
  return dirs;
}

}  // namespace

Result<Loader> find_loader(const RootFs& root) {
  auto musl = find_in_lib(root, "ld-musl-", "", ".so.1");
  if (!musl) return musl.error();
  if (!musl->empty()) return Loader{Libc::kMusl, *musl};
  auto x86 = is_file(root, "/lib64/ld-linux-x86-64.so.2");
  if (!x86) return x86.error();
  if (*x86) return Loader{Libc::kGlibc, "/lib64/ld-linux-x86-64.so.2"};
  auto glibc = find_in_lib(root, "ld-linux", ".so", "");
  if (!glibc) return glibc.error();
  if (!glibc->empty()) return Loader{Libc::kGlibc, *glibc};
  return Loader{};
}

Result<std::string> preload_problem(const RootFs& root, const Loader& loader,
                                    const std::string& interposer) {
  int raw = ::open(interposer.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (raw < 0)
    return make_error(fmt::format("interposer {}: {}", interposer, std::strerror(errno)));
  UniqueFd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return make_error(fmt::format("interposer {}: not a regular file", interposer));
  auto ours = read_elf_deps(fd.get());
  if (!ours) return make_error(fmt::format("interposer {}: {}", interposer, ours.message()));
  auto ld = image_elf(root, loader.path);
  if (!ld) return ld.error();
  if (ld->machine != ours->machine || ld->elf_class != ours->elf_class)
    return fmt::format("the image's loader {} is for {}, the interposer for {}", loader.path,
                       elf_machine_name(ld->machine), elf_machine_name(ours->machine));
  if (loader.libc != Libc::kGlibc) return std::string();

  // Every library the interposer needs, with the versions it needs from it.
  std::vector<std::pair<std::string, std::vector<std::string>>> needs;
  for (const auto& n : ours->needed) needs.emplace_back(n, std::vector<std::string>{});
  for (const auto& need : ours->version_needs) {
    const std::string& file = need.first;  // (clang 14 cannot capture a structured binding)
    auto it = std::find_if(needs.begin(), needs.end(), [&](auto& p) { return p.first == file; });
    if (it == needs.end()) it = needs.emplace(needs.end(), file, std::vector<std::string>{});
    it->second.insert(it->second.end(), need.second.begin(), need.second.end());
  }
  for (const auto& [file, versions] : needs) {
    if (file.find('/') != std::string::npos)
      return fmt::format("the interposer needs {} by path", file);
    std::optional<ElfDeps> lib;
    std::string where;
    for (const auto& dir : library_dirs(ld->machine)) {
      auto f = is_file(root, dir + "/" + file);
      if (!f) return f.error();
      if (!*f) continue;
      auto deps = image_elf(root, dir + "/" + file);
      if (!deps) return deps.error();
      if (deps->machine != ours->machine || deps->elf_class != ours->elf_class) continue;
      lib = std::move(*deps);
      where = dir + "/" + file;
      break;
    }
    if (!lib) return fmt::format("the image has no {} (the interposer needs it)", file);
    std::set<std::string> defined(lib->version_defs.begin(), lib->version_defs.end());
    for (const auto& v : versions)
      if (!defined.count(v))
        return fmt::format(
            "the image's {} lacks {}, which the interposer needs (its glibc is "
            "older than the one the interposer was built with)",
            where, v);
  }
  return std::string();
}

}  // namespace shaudit::oci
