// SPDX-License-Identifier: Apache-2.0
#include "sessions.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "shaudit/crypto.h"
#include "shaudit/record.h"

namespace shaudit::daemon {
namespace {

std::string read_small(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

std::string trim_id(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s == "4294967295") return {};
  return s;
}

std::string new_id() {
  unsigned char b[8];
  if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) {
    uint64_t t = static_cast<uint64_t>(record::now_ns());
    std::memcpy(b, &t, sizeof b);
  }
  return crypto::to_hex(b, sizeof b);
}

}  // namespace

ProcFacts read_proc_facts(pid_t pid) {
  ProcFacts f;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::string stat = read_small(path);
  // pid (comm) state ppid ... field 22 starttime; comm may contain spaces and ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return f;
  const char* p = stat.c_str() + close + 2;
  char state;
  long ppid;
  if (std::sscanf(p, "%c %ld", &state, &ppid) != 2) return f;
  // A process being reaped still has a stat file, with parent 0: it is gone (only pid 1
  // and kthreadd have no parent).
  if (ppid == 0 && pid > 2) return f;
  int field = 3;
  const char* q = p;
  while (*q && field < 22) {
    if (*q == ' ') ++field;
    ++q;
  }
  f.start_time = std::strtoull(q, nullptr, 10);
  f.ppid = static_cast<pid_t>(ppid);
  std::snprintf(path, sizeof path, "/proc/%d/loginuid", static_cast<int>(pid));
  f.loginuid = trim_id(read_small(path));
  std::snprintf(path, sizeof path, "/proc/%d/sessionid", static_cast<int>(pid));
  f.audit_session = trim_id(read_small(path));
  f.ok = true;
  return f;
}

SessionRegistry::SessionRegistry(std::string table_dir) : dir_(std::move(table_dir)) {
  ::mkdir(dir_.c_str(), 0755);
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ::unlinkat(dirfd(d), e->d_name, 0);
    ::closedir(d);
  }
}

SessionRegistry::~SessionRegistry() {
  for (auto& [id, s] : sessions_) {
    unpublish(s);
    if (s.pidfd >= 0) ::close(s.pidfd);
  }
  ::rmdir(dir_.c_str());
}

Session& SessionRegistry::open(Session s) {
  // A session the kernel began following keeps the id its key names (the caller checked it
  // is free).
  while (s.id.empty() || sessions_.count(s.id)) s.id = new_id();
  s.start_ns = record::now_ns();
  s.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, s.entry_pid, 0));
  entries_[s.entry_pid] = s.id;
  publish(s);
  auto [it, _] = sessions_.emplace(s.id, std::move(s));
  return it->second;
}

std::optional<Session> SessionRegistry::close(const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  Session s = std::move(it->second);
  sessions_.erase(it);
  auto e = entries_.find(s.entry_pid);
  if (e != entries_.end() && e->second == id) entries_.erase(e);
  unpublish(s);
  if (s.pidfd >= 0) ::close(s.pidfd);
  s.pidfd = -1;
  return s;
}

Session* SessionRegistry::find(const std::string& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Session* SessionRegistry::by_entry(pid_t pid, uint64_t start_time) {
  auto e = entries_.find(pid);
  if (e == entries_.end()) return nullptr;
  Session* s = find(e->second);
  return s && (s->entry_start == 0 || s->entry_start == start_time) ? s : nullptr;
}

Session* SessionRegistry::by_audit_session(const std::string& sid) {
  if (sid.empty()) return nullptr;
  Session* best = nullptr;
  for (auto& [id, s] : sessions_)
    if (s.audit_session == sid && !s.implicit && (!best || s.start_ns < best->start_ns)) best = &s;
  return best;  // the outermost (login) session of that audit session
}

Session* SessionRegistry::by_pidfd(int fd) {
  for (auto& [id, s] : sessions_)
    if (s.pidfd == fd) return &s;
  return nullptr;
}

void SessionRegistry::publish(const Session& s) {
  if (s.audit_session.empty()) return;
  std::string path = dir_ + "/" + s.audit_session;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd >= 0) ::close(fd);
}

void SessionRegistry::unpublish(const Session& s) {
  if (s.audit_session.empty()) return;
  for (auto& [id, other] : sessions_)
    if (other.audit_session == s.audit_session && other.id != s.id) return;  // still live
  ::unlink((dir_ + "/" + s.audit_session).c_str());
}

}  // namespace shaudit::daemon
