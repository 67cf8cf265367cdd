// SPDX-License-Identifier: Apache-2.0
// Loads and runs the eBPF collector: the process-lifecycle programs (proc.bpf.c), the bash/zsh
// line probes, the tracked-process map and the ring buffer. Implemented in proc.cc; the events
// it delivers are the structs of proc.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proc.h"
#include "shaudit/result.h"

struct shaudit_proc_bpf;
struct ring_buffer;

namespace shaudit::bpf {

struct CollectorOptions {
  size_t ringbuf_bytes = 8u << 20;  // power of two, at least one page
  // Binaries whose readline()/zleread() return values are probed from the start.
  std::vector<std::string> readline_binaries = {"/usr/bin/bash"};
  std::vector<std::string> zle_modules;  // e.g. /usr/lib/x86_64-linux-gnu/zsh/5.9/zsh/zle.so
  // The genuine interposer library: its announcement to the kernel is accepted only from code
  // in this file (SA_EV_HOOKED). Empty: no such events.
  std::string interposer;
  // Follow, from its exec, every process a container runtime starts inside a container from
  // outside it (runc exec), under a new key: an exec event flagged SA_FLAG_RUNTIME_EXEC.
  bool follow_runtime_execs = false;
  // The enforcing mode: load the BPF LSM program that refuses (EPERM) an exec by a tracked
  // process whose new image would run without `interposer` (SA_EV_DENIED). Needs `bpf` among
  // the kernel's active LSMs (the caller checks that first).
  bool enforce = false;
  // With enforce: the kill mode instead of the BPF LSM program: a tp_btf program on
  // sched_process_exec makes the same decision and kills the process (SIGKILL) before its new
  // image runs (SA_EV_DENIED with SA_FLAG_KILLED). Needs no BPF LSM.
  bool kill = false;
  // With enforce, fail: closed: while the heartbeat (heartbeat()) is older than 3 x
  // heartbeat_ms, every exec in an audited session is refused (or killed) but those of the
  // break-glass files (st_dev, st_ino), each reported (SA_EV_BREAK_GLASS).
  bool fail_closed = false;
  uint32_t heartbeat_ms = 1000;
  std::vector<std::pair<uint64_t, uint64_t>> break_glass;
  // With enforce: a bpffs directory (/sys/fs/bpf/shaudit-...) where the programs' links and the
  // state maps (tracked, hooked_pids, session_images, events) are pinned, so enforcement
  // outlives a killed shauditd; the next start reuses the maps (and reads the events the old
  // programs wrote meanwhile) and replaces the links. Removed at a clean stop unless
  // keep_pins (fail: closed). "": nothing pinned.
  std::string pin_dir;
  bool keep_pins = false;
  // With enforce: the LSM programs that keep every other process from writing, reading,
  // removing or renaming the files given to protect_file() and from ptrace access to this
  // process (SA_EV_TAMPER).
  bool protect = false;
};

// Called for every event; data points at a struct from proc.h of size bytes.
using EventFn = std::function<void(const void* data, size_t size)>;

// Move-only owner of the skeleton, its links and the ring buffer.
class Collector {
 public:
  // open -> set sizes -> load -> attach, in that order. Fails with the kernel's reason.
  static Result<std::unique_ptr<Collector>> start(const CollectorOptions& opts, EventFn fn);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  int epoll_fd() const;  // readable when events wait
  int consume();         // delivers waiting events; returns how many
  // fail: closed: tells the kernel this process keeps up (CLOCK_MONOTONIC now), at most every
  // heartbeat_ms / 4; called by the thread that consumes the kernel's events. No-op otherwise.
  void heartbeat();
  const std::string& pin_dir() const { return pin_dir_; }
  // Starts tracking a process (a session's entry) and, by fork, its descendants.
  Result<void> track(pid_t pid, uint64_t key);
  // Stops following pid, if it is still followed under key (its descendants forked since
  // keep the key until they exit).
  void untrack(pid_t pid, uint64_t key);
  // Adds the line probe of the binary at path: readline's rl_deprep_terminal() (bash and
  // copies) or zleread() (zsh's zle module); a binary (by device and inode) is probed once.
  Result<void> probe_lines(const std::string& path, bool zle);
  // Probes path's readline() when it is a bash (any name, any place) not yet probed; each
  // binary (device, inode) is examined once. Returns true when a new probe was attached.
  bool probe_if_bash(const std::string& path);
  uint64_t dropped() const;  // events lost to a full ring buffer, since load
  // Whether the current image of pid initialised the genuine interposer (the kernel saw it).
  bool interposer_initialised(pid_t pid) const;
  // A file (st_dev, st_ino) whose bytes equal the genuine interposer's (a copy inside a
  // container image): its announcements count as the interposer's.
  void allow_interposer(uint64_t dev, uint64_t ino);
  // Protects the file at path (how: SA_PROTECT_*), by device and inode; a file that does not
  // exist yet is protected once refresh_protected() finds it.
  void protect_file(const std::string& path, uint32_t how);
  // Follows each protected path to its current file (after a rotation replaced the log).
  void refresh_protected();
  // The path a protected file (kernel dev_t, inode) was given under ("" when none).
  std::string protected_path(uint64_t dev, uint64_t ino) const;

 private:
  // Marks the file at (dev, ino) (stat's st_dev) examined: its execs no longer wake shauditd.
  void mark_known(uint64_t dev, uint64_t ino);
  Collector() = default;
  void write_heartbeat(uint64_t now_ns);
  void unpin();
  shaudit_proc_bpf* skel_ = nullptr;
  uint64_t heartbeat_every_ns_ = 0;  // 0: fail: open
  std::string pin_dir_;              // "": nothing pinned
  bool keep_pins_ = false;
  uint64_t heartbeat_last_ns_ = 0;
  ring_buffer* rb_ = nullptr;
  EventFn fn_;
  std::set<std::pair<uint64_t, uint64_t>> probed_;    // (dev, ino)
  std::set<std::pair<uint64_t, uint64_t>> examined_;  // (dev, ino) found not to be bash
  std::vector<void*> links_;                          // struct bpf_link*
  uint64_t rl_cookies_ = 0;                           // bash binaries given readline variables
  struct Protected {
    std::string path;
    uint32_t how;
    uint64_t dev = 0, ino = 0;  // the file in the kernel map (kernel dev_t; 0: none yet)
  };
  std::vector<Protected> protected_;
};

// Runs the enforcing mode's two kernel-side parsers on given inputs (BPF_PROG_TEST_RUN of the
// enforce_selftest program, in this process): bit 0 when image_head (an image's first bytes)
// has no program interpreter, bit 1 when env's LD_PRELOAD names interposer. For tests. The
// whole decision is loaded too (as a tp_btf program, never attached): the verifier checks it.
Result<uint32_t> enforce_selftest(const std::string& interposer, const std::string& image_head,
                                  const std::vector<std::string>& env);

// True when file (the host's /etc/ld.so.preload) lists interposer: host-wide mode, where the
// enforcing mode does not require LD_PRELOAD in an exec's environment.
bool host_wide_preload(const std::string& interposer,
                       const std::string& file = "/etc/ld.so.preload");

// True when path is an ELF binary exporting readline and rl_line_buffer (bash or a copy).
bool looks_like_bash(const std::string& path);
// The values of the named defined dynamic symbols of an ELF64 file (0: absent).
std::vector<uint64_t> dynamic_symbols(const std::string& path,
                                      const std::vector<std::string>& names);

}  // namespace shaudit::bpf
