// SPDX-License-Identifier: Apache-2.0
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "proc.skel.h"
#include "proc_collector.h"
#include "shaudit/wire.h"

static_assert(SA_PRCTL_MARK == SHAUDIT_PRCTL_MARK, "the interposer's mark and the BPF side's");

namespace shaudit::bpf {
namespace {

// libbpf's messages are kept (last few lines) to explain a failure, never printed.
std::mutex g_log_mu;
std::string g_log;

int libbpf_print(enum libbpf_print_level level, const char* fmt_str, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[512];
  int n = vsnprintf(buf, sizeof buf, fmt_str, ap);
  std::lock_guard lk(g_log_mu);
  g_log.append(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1) : 0);
  if (g_log.size() > 4096) g_log.erase(0, g_log.size() - 4096);
  return n;
}

std::string last_log() {
  std::lock_guard lk(g_log_mu);
  std::string s = g_log;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto nl = s.rfind('\n', s.size() > 600 ? s.size() - 600 : 0);
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// A device number as the kernel holds it in struct super_block (major << 20 | minor), which is
// what the eBPF programs read; stat() encodes it differently.
uint64_t kernel_dev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | minor(dev);
}

int on_event(void* ctx, void* data, size_t size) {
  auto* fn = static_cast<EventFn*>(ctx);
  (*fn)(data, size);
  return 0;
}

}  // namespace

bool host_wide_preload(const std::string& interposer, const std::string& file) {
  // ld.so reads the file's names separated by white space or colons.
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return false;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (1u << 20))
    text.append(buf, n);
  std::fclose(f);
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find_first_of(" \t\n\r:", i);
    if (j == std::string::npos) j = text.size();
    if (j > i && text.compare(i, j - i, interposer) == 0) return true;
    i = j + 1;
  }
  return false;
}

namespace {

Error fail(const char* what, int err) {
  std::string log = last_log();
  return Error{fmt::format("eBPF {}: {}{}{}", what, std::strerror(err < 0 ? -err : err),
                           log.empty() ? "" : "; libbpf: ", log)};
}

}  // namespace

Result<std::unique_ptr<Collector>> Collector::start(const CollectorOptions& opts, EventFn fn) {
  libbpf_set_print(libbpf_print);
  std::unique_ptr<Collector> c(new Collector());
  c->fn_ = std::move(fn);
  c->skel_ = shaudit_proc_bpf__open();
  if (!c->skel_) return fail("open", errno);
  int err = bpf_map__set_max_entries(c->skel_->maps.events, static_cast<__u32>(opts.ringbuf_bytes));
  if (err) return fail("ring buffer size", err);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0 ||
      (err = bpf_map__set_max_entries(c->skel_->maps.exec_scratch, static_cast<__u32>(ncpu))))
    return fail("scratch map size", ncpu <= 0 ? ncpu : err);
  struct stat interposer_st {};
  if (!opts.interposer.empty() && ::stat(opts.interposer.c_str(), &interposer_st) != 0)
    return Error{
        fmt::format("eBPF: interposer {}: {} (set `interposer` to the installed "
                    "libshaudit_preload.so)",
                    opts.interposer, std::strerror(errno))};
  c->skel_->rodata->follow_runtime_execs = opts.follow_runtime_execs ? 1 : 0;
  if (opts.enforce) {
    if (opts.interposer.empty() || opts.interposer.size() >= SA_PATH_MAX)
      return Error{fmt::format("enforce: the interposer path must be 1 to {} bytes, got '{}'",
                               SA_PATH_MAX - 1, opts.interposer)};
    c->skel_->rodata->enforce = 1;
    std::memcpy(const_cast<char*>(c->skel_->rodata->interposer_path), opts.interposer.data(),
                opts.interposer.size());
    struct stat ns {};
    if (::stat("/proc/self/ns/mnt", &ns) == 0)
      c->skel_->rodata->enforce_mntns = static_cast<__u32>(ns.st_ino);
    if (host_wide_preload(opts.interposer)) c->skel_->rodata->enforce_preload_env = 0;
    if (opts.kill) {  // the tp_btf program replaces the LSM one
      c->skel_->rodata->enforce_kill = 1;
      bpf_program__set_autoload(c->skel_->progs.enforce_kill_exec, true);
      bpf_program__set_autoload(c->skel_->progs.enforce_exec, false);
    }
    if (opts.fail_closed) {
      c->skel_->rodata->fail_closed = 1;
      c->skel_->rodata->heartbeat_max_ns = 3ull * opts.heartbeat_ms * 1000000ull;
      c->heartbeat_every_ns_ = static_cast<uint64_t>(opts.heartbeat_ms) * 1000000ull / 4;
    }
  } else {
    // Without the enforcing mode the LSM program is neither loaded nor attached (a kernel
    // without BPF LSM runs everything else).
    bpf_program__set_autoload(c->skel_->progs.enforce_exec, false);
  }
  if (opts.enforce && opts.protect) {
    c->skel_->rodata->protect = 1;
    c->skel_->rodata->daemon_tgid = static_cast<__u32>(getpid());
  } else {
    for (bpf_program* p : {c->skel_->progs.protect_open, c->skel_->progs.protect_unlink,
                           c->skel_->progs.protect_rename, c->skel_->progs.protect_ptrace})
      bpf_program__set_autoload(p, false);
  }
  if (!opts.pin_dir.empty()) {
    if (::mkdir(opts.pin_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Error{fmt::format("eBPF: pin directory {}: {}", opts.pin_dir, std::strerror(errno))};
    c->pin_dir_ = opts.pin_dir;
    c->keep_pins_ = opts.keep_pins;
    for (bpf_map* m : {c->skel_->maps.tracked, c->skel_->maps.hooked_pids,
                       c->skel_->maps.session_images, c->skel_->maps.events}) {
      std::string path = opts.pin_dir + "/map_" + bpf_map__name(m);
      // A map pinned by an earlier run is reused when it has the same shape (libbpf checks it
      // again); another shape (a changed ring buffer size) is replaced.
      int fd = bpf_obj_get(path.c_str());
      if (fd >= 0) {
        bpf_map_info info{};
        __u32 len = sizeof info;
        bool same = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
                    info.type == static_cast<__u32>(bpf_map__type(m)) &&
                    info.key_size == bpf_map__key_size(m) &&
                    info.value_size == bpf_map__value_size(m) &&
                    info.max_entries == bpf_map__max_entries(m);
        ::close(fd);
        if (!same) ::unlink(path.c_str());
      }
      if ((err = bpf_map__set_pin_path(m, path.c_str()))) return fail("pin path", err);
    }
  }
  if ((err = shaudit_proc_bpf__load(c->skel_))) {
    std::string refused;  // the section of the first LSM program the kernel refused
    {
      std::lock_guard lk(g_log_mu);
      for (auto [prog, sec] : {std::pair{"enforce_exec", "lsm/bprm_check_security"},
                               std::pair{"protect_open", "lsm/file_open"},
                               std::pair{"protect_unlink", "lsm/inode_unlink"},
                               std::pair{"protect_rename", "lsm/inode_rename"},
                               std::pair{"protect_ptrace", "lsm/ptrace_access_check"}})
        if (opts.enforce && refused.empty() &&
            !(opts.kill && prog == std::string("enforce_exec")) &&
            g_log.find(fmt::format("prog '{}': failed to load", prog)) != std::string::npos)
          refused = sec;
    }
    if (!refused.empty())
      return Error{fmt::format(
          "the kernel refused to load the BPF LSM program ({}): {} (BPF LSM needs "
          "CONFIG_BPF_LSM=y, 'bpf' in lsm=, and a kernel that loads BPF trampoline programs){}",
          refused, std::strerror(err < 0 ? -err : err),
          opts.kill ? "" : "; enforce: {mode: kill} enforces without BPF LSM")};
    return fail("load", err);
  }
  // The genuine interposer, by device and inode; and its musl build beside it, for musl
  // programs (Alpine-style images through the runtime wrapper).
  if (!opts.interposer.empty()) {
    c->allow_interposer(interposer_st.st_dev, interposer_st.st_ino);
    std::string musl =
        opts.interposer.substr(0, opts.interposer.rfind('/') + 1) + "libshaudit_preload_musl.so";
    struct stat mst;
    if (::stat(musl.c_str(), &mst) == 0) c->allow_interposer(mst.st_dev, mst.st_ino);
  }
  if (c->heartbeat_every_ns_) {  // fresh before anything is enforced
    c->heartbeat();
    for (auto [dev, ino] : opts.break_glass) {
      sa_file_key k{kernel_dev(static_cast<dev_t>(dev)), ino};
      __u8 one = 1;
      if ((err = bpf_map_update_elem(bpf_map__fd(c->skel_->maps.break_glass), &k, &one, BPF_ANY)))
        return fail("break-glass list", errno);
    }
  }
  if (!c->pin_dir_.empty()) {
    // The links an earlier run left pinned: their programs stop here (the new ones attach
    // next; the state maps carry over).
    for (int i = 0; i < c->skel_->skeleton->prog_cnt; i++)
      ::unlink((c->pin_dir_ + "/link_" + c->skel_->skeleton->progs[i].name).c_str());
  }
  if ((err = shaudit_proc_bpf__attach(c->skel_))) return fail("attach", err);
  if (!c->pin_dir_.empty()) {
    for (int i = 0; i < c->skel_->skeleton->prog_cnt; i++) {
      bpf_link* l = *c->skel_->skeleton->progs[i].link;
      if (!l) continue;
      std::string name = c->skel_->skeleton->progs[i].name;
      // What enforcement needs (the other probes, and the protection, whose programs name
      // this process as shauditd, end with it).
      static const std::set<std::string> kNeeded = {
          "handle_exec",        "enforce_kill_exec",   "enforce_exec",  "handle_fork",
          "handle_exit",        "handle_prctl",        "handle_execve", "handle_execveat",
          "handle_execve_exit", "handle_execveat_exit"};
      if (!kNeeded.count(name)) continue;
      if ((err = bpf_link__pin(l, (c->pin_dir_ + "/link_" + name).c_str())))
        return fail("pin link", err);
    }
  }
  c->rb_ = ring_buffer__new(bpf_map__fd(c->skel_->maps.events), on_event, &c->fn_, nullptr);
  if (!c->rb_) return fail("ring buffer", errno);
  for (const auto& path : opts.readline_binaries)
    if (auto r = c->probe_lines(path, false); !r && access(path.c_str(), F_OK) == 0)
      return r.error();
  for (const auto& path : opts.zle_modules)
    if (auto r = c->probe_lines(path, true); !r && access(path.c_str(), F_OK) == 0)
      return r.error();
  return c;
}

Collector::~Collector() {
  for (void* l : links_) bpf_link__destroy(static_cast<bpf_link*>(l));
  if (skel_ && !pin_dir_.empty() && !keep_pins_) unpin();
  if (rb_) ring_buffer__free(rb_);
  if (skel_) shaudit_proc_bpf__destroy(skel_);
}

int Collector::epoll_fd() const {
  return ring_buffer__epoll_fd(rb_);
}

int Collector::consume() {
  return ring_buffer__consume(rb_);
}

Result<void> Collector::track(pid_t pid, uint64_t key) {
  __u32 k = static_cast<__u32>(pid);
  __u64 v = key;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked), &k, &v, BPF_ANY) != 0)
    return fail("track", errno);
  return {};
}

void Collector::untrack(pid_t pid, uint64_t key) {
  __u32 k = static_cast<__u32>(pid);
  __u64 v = 0;
  // Only while it is still under that key (the pid may be another process's by now).
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.tracked), &k, &v) == 0 && v == key)
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.tracked), &k);
}

Result<void> Collector::probe_lines(const std::string& path, bool zle) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Error{fmt::format("eBPF line probe {}: {}", path, std::strerror(errno))};
  auto id = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  if (probed_.count(id)) return {};
  bpf_link* link = nullptr;
  if (zle) {
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = true, .func_name = "zleread");
    link = bpf_program__attach_uprobe_opts(skel_->progs.zleread_ret, -1, path.c_str(), 0, &uo);
  } else {
    // bash: an entry probe on rl_deprep_terminal, told (through its cookie) where readline's
    // variables lie relative to it in this binary.
    auto syms =
        dynamic_symbols(path, {"rl_deprep_terminal", "rl_line_buffer", "rl_done", "rl_eof_found"});
    if (!syms[0] || !syms[1] || !syms[2])
      return Error{
          fmt::format("eBPF line probe on {}: no rl_deprep_terminal, rl_line_buffer or "
                      "rl_done among its dynamic symbols",
                      path)};
    sa_rl_vars v{};
    v.line = static_cast<int64_t>(syms[1] - syms[0]);
    v.done = static_cast<int64_t>(syms[2] - syms[0]);
    v.eof = syms[3] ? static_cast<int64_t>(syms[3] - syms[0]) : 0;
    uint64_t cookie = ++rl_cookies_;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.rl_vars), &cookie, &v, BPF_ANY) != 0)
      return fail(fmt::format("line probe on {}", path).c_str(), errno);
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie, .retprobe = false,
                .func_name = "rl_deprep_terminal");
    link = bpf_program__attach_uprobe_opts(skel_->progs.rl_deprep_entry, -1, path.c_str(), 0, &uo);
  }
  if (!link) return fail(fmt::format("line probe on {}", path).c_str(), errno);
  links_.push_back(link);
  probed_.insert(id);
  mark_known(st.st_dev, st.st_ino);
  return {};
}

bool Collector::interposer_initialised(pid_t pid) const {
  __u32 k = static_cast<__u32>(pid);
  __u8 v = 0;
  return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.hooked_pids), &k, &v) == 0;
}

void Collector::unpin() {
  // A clean stop without fail: closed: enforcement ends with shauditd.
  for (int i = 0; i < skel_->skeleton->prog_cnt; i++)
    if (bpf_link* l = *skel_->skeleton->progs[i].link; l && bpf_link__pin_path(l))
      (void)bpf_link__unpin(l);
  for (bpf_map* m : {skel_->maps.tracked, skel_->maps.hooked_pids, skel_->maps.session_images,
                     skel_->maps.events})
    if (bpf_map__is_pinned(m)) (void)bpf_map__unpin(m, nullptr);
  ::rmdir(pin_dir_.c_str());
}

void Collector::heartbeat() {
  if (!heartbeat_every_ns_) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // bpf_ktime_get_ns()'s clock
  uint64_t now =
      static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  if (heartbeat_last_ns_ && now - heartbeat_last_ns_ < heartbeat_every_ns_) return;
  write_heartbeat(now);
}

void Collector::write_heartbeat(uint64_t now_ns) {
  __u32 zero = 0;
  __u64 v = now_ns;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.heartbeat), &zero, &v, BPF_ANY) == 0)
    heartbeat_last_ns_ = now_ns;
}

void Collector::allow_interposer(uint64_t dev, uint64_t ino) {
  sa_file_key k{kernel_dev(dev), ino};
  __u8 one = 1;
  (void)bpf_map_update_elem(bpf_map__fd(skel_->maps.genuine_interposers), &k, &one, BPF_ANY);
}

void Collector::protect_file(const std::string& path, uint32_t how) {
  protected_.push_back({path, how});
  refresh_protected();
}

void Collector::refresh_protected() {
  int fd = bpf_map__fd(skel_->maps.protected_files);
  for (Protected& p : protected_) {
    struct stat st;
    uint64_t dev = 0, ino = 0;
    if (::stat(p.path.c_str(), &st) == 0) {
      dev = kernel_dev(st.st_dev);
      ino = st.st_ino;
    }
    if (dev == p.dev && ino == p.ino) continue;
    if (p.ino) {
      sa_file_key old{p.dev, p.ino};
      (void)bpf_map_delete_elem(fd, &old);
    }
    p.dev = dev;
    p.ino = ino;
    if (ino) {
      sa_file_key k{dev, ino};
      __u32 how = p.how;
      (void)bpf_map_update_elem(fd, &k, &how, BPF_ANY);
    }
  }
}

std::string Collector::protected_path(uint64_t dev, uint64_t ino) const {
  for (const Protected& p : protected_)
    if (p.dev == dev && p.ino == ino) return p.path;
  return {};
}

void Collector::mark_known(uint64_t dev, uint64_t ino) {
  sa_file_key k{kernel_dev(dev), ino};
  __u8 one = 1;
  (void)bpf_map_update_elem(bpf_map__fd(skel_->maps.known_files), &k, &one, BPF_ANY);
}

bool Collector::probe_if_bash(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  auto id = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  if (probed_.count(id) || examined_.count(id)) return false;
  mark_known(st.st_dev, st.st_ino);
  if (!looks_like_bash(path)) {
    if (examined_.size() > 65536) examined_.clear();
    examined_.insert(id);
    return false;
  }
  return probe_lines(path, false).ok();
}

uint64_t Collector::dropped() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  std::vector<__u64> vals(static_cast<size_t>(ncpu));
  __u32 which = SA_STAT_DROPPED;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stats), &which, vals.data()) != 0) return 0;
  uint64_t sum = 0;
  for (auto v : vals) sum += v;
  return sum;
}

std::vector<uint64_t> dynamic_symbols(const std::string& path,
                                      const std::vector<std::string>& names) {
  // Reads the ELF64 dynamic symbol table: the value of each defined symbol asked for, 0 when
  // absent (or not an ELF64 file).
  std::vector<uint64_t> out(names.size(), 0);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::string data;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && data.size() < (64u << 20))
    data.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (data.size() < sizeof(Elf64_Ehdr) || data.compare(0, 4, ELFMAG) != 0 ||
      data[EI_CLASS] != ELFCLASS64)
    return out;
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof eh);
  auto section = [&](size_t i, Elf64_Shdr& sh) {
    size_t off = eh.e_shoff + i * sizeof(Elf64_Shdr);
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || off + sizeof sh > data.size()) return false;
    std::memcpy(&sh, data.data() + off, sizeof sh);
    return true;
  };
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sym, str;
    if (!section(i, sym) || sym.sh_type != SHT_DYNSYM || !section(sym.sh_link, str)) continue;
    if (sym.sh_offset + sym.sh_size > data.size() || str.sh_offset + str.sh_size > data.size())
      return out;
    for (size_t off = 0; off + sizeof(Elf64_Sym) <= sym.sh_size; off += sizeof(Elf64_Sym)) {
      Elf64_Sym es;
      std::memcpy(&es, data.data() + sym.sh_offset + off, sizeof es);
      if (es.st_shndx == SHN_UNDEF || es.st_name >= str.sh_size) continue;
      const char* name = data.data() + str.sh_offset + es.st_name;
      size_t max = str.sh_size - es.st_name;
      if (strnlen(name, max) == max) continue;
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == name) out[k] = es.st_value;
    }
  }
  return out;
}

Result<uint32_t> enforce_selftest(const std::string& interposer, const std::string& image_head,
                                  const std::vector<std::string>& env) {
  libbpf_set_print(libbpf_print);
  if (interposer.empty() || interposer.size() >= SA_PATH_MAX)
    return Error{"enforce_selftest: interposer path length"};
  shaudit_proc_bpf* skel = shaudit_proc_bpf__open();
  if (!skel) return fail("open", errno);
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, false);
  bpf_program__set_autoload(skel->progs.enforce_selftest, true);
  bpf_program__set_autoload(skel->progs.enforce_verify, true);  // the verifier checks it
  bpf_program__set_autoload(skel->progs.protect_verify, true);
  bpf_program__set_autoload(skel->progs.enforce_kill_exec, true);  // the kill mode, verified
  skel->rodata->enforce = 1;
  skel->rodata->enforce_kill = 1;
  skel->rodata->fail_closed = 1;  // the fail-closed path, verified too
  skel->rodata->heartbeat_max_ns = 3000000000ull;
  skel->rodata->protect = 1;
  std::memcpy(const_cast<char*>(skel->rodata->interposer_path), interposer.data(),
              interposer.size());
  if (int err = shaudit_proc_bpf__load(skel)) {
    shaudit_proc_bpf__destroy(skel);
    return fail("load", err);
  }
  std::vector<char> head(256, 0);
  std::memcpy(head.data(), image_head.data(), std::min<size_t>(image_head.size(), head.size()));
  std::vector<const char*> envp;
  for (const auto& e : env) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  __u64 args[2] = {reinterpret_cast<__u64>(envp.data()), reinterpret_cast<__u64>(head.data())};
  LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = sizeof args);
  int err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.enforce_selftest), &o);
  int saved = errno;
  shaudit_proc_bpf__destroy(skel);
  if (err) return fail("test run", saved);
  return static_cast<uint32_t>(o.retval);
}

bool looks_like_bash(const std::string& path) {
  // bash (and any copy of it) exports both symbols.
  auto v = dynamic_symbols(path, {"readline", "rl_line_buffer"});
  return v[0] && v[1];
}

}  // namespace shaudit::bpf
