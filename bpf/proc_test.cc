// SPDX-License-Identifier: Apache-2.0
// The eBPF collector against the real kernel (needs root, BTF and BPF; CI runs as root).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "proc_collector.h"

namespace {

struct Seen {
  std::vector<sa_exec_event> execs;
  std::vector<sa_attempt_event> attempts;
  std::vector<sa_fork_event> forks;
  std::vector<sa_exit_event> exits;
};

std::string argv_of(const sa_exec_event& e) {
  std::string s(e.argv, e.argv_len);
  for (auto& c : s)
    if (c == '\0') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to load eBPF programs (CI runs as root)";
    auto c = shaudit::bpf::Collector::start({}, [this](const void* d, size_t n) { on(d, n); });
    ASSERT_TRUE(c.ok()) << c.message();
    col_ = std::move(*c);
  }

  void on(const void* d, size_t n) {
    sa_event_hdr h;
    ASSERT_GE(n, sizeof h);
    std::memcpy(&h, d, sizeof h);
    switch (h.type) {
      case SA_EV_EXEC:
        keep(seen_.execs, d, n);
        break;
      case SA_EV_ATTEMPT:
        keep(seen_.attempts, d, n);
        break;
      case SA_EV_FORK:
        keep(seen_.forks, d, n);
        break;
      case SA_EV_EXIT:
        keep(seen_.exits, d, n);
        break;
    }
  }

  // Events may be shorter than their struct (an exec event ends after its argv).
  template <class Event>
  static void keep(std::vector<Event>& v, const void* d, size_t n) {
    Event& e = v.emplace_back();
    std::memcpy(&e, d, std::min(n, sizeof e));
  }

  std::unique_ptr<shaudit::bpf::Collector> col_;
  Seen seen_;
};

TEST_F(CollectorTest, FollowsATrackedProcessTreeThroughForkExecExit) {
  // A helper process is tracked; it forks a child that execs /bin/sh -c 'exit 3'.
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    char b;
    if (read(go[0], &b, 1) != 1) _exit(1);
    pid_t child = fork();
    if (child == 0) {
      execl("/bin/sh", "sh", "-c", "exit 3", static_cast<char*>(nullptr));
      _exit(127);
    }
    int st;
    waitpid(child, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
  }
  ASSERT_TRUE(col_->track(helper, 42).ok());
  ASSERT_EQ(write(go[1], "x", 1), 1);
  int st;
  ASSERT_EQ(waitpid(helper, &st, 0), helper);
  EXPECT_EQ(WEXITSTATUS(st), 3);
  for (int i = 0; i < 50 && seen_.exits.size() < 2; ++i) {
    col_->consume();
    usleep(10000);
  }
  ASSERT_EQ(seen_.forks.size(), 1u);
  EXPECT_EQ(seen_.forks[0].h.pid, static_cast<__u32>(helper));
  EXPECT_EQ(seen_.forks[0].h.key, 42u);
  pid_t child = static_cast<pid_t>(seen_.forks[0].child_pid);
  EXPECT_TRUE(seen_.attempts.empty());  // the exec succeeded: the exec event is the attempt
  ASSERT_EQ(seen_.execs.size(), 1u);
  const auto& e = seen_.execs[0];
  EXPECT_EQ(e.h.pid, static_cast<__u32>(child));
  EXPECT_EQ(e.h.ppid, static_cast<__u32>(helper));
  EXPECT_EQ(e.h.key, 42u);
  EXPECT_STREQ(e.filename, "/bin/sh");
  EXPECT_EQ(e.argc, 3u);
  EXPECT_EQ(argv_of(e), "sh -c exit 3");
  EXPECT_EQ(e.h.flags & SA_FLAG_SECUREEXEC, 0u);
  ASSERT_EQ(seen_.exits.size(), 2u);  // the child, then the helper
  EXPECT_EQ(seen_.exits[0].h.pid, static_cast<__u32>(child));
  EXPECT_EQ(seen_.exits[0].exit_code, 3 << 8);
  EXPECT_EQ(seen_.exits[1].h.pid, static_cast<__u32>(helper));
  EXPECT_EQ(col_->dropped(), 0u);
}

TEST_F(CollectorTest, AFailedExecIsAnAttemptWithItsError) {
  pid_t p = fork();
  if (p == 0) {
    usleep(50000);
    execl("/nonexistent/tool", "tool", static_cast<char*>(nullptr));
    _exit(9);
  }
  ASSERT_TRUE(col_->track(p, 5).ok());
  int st;
  waitpid(p, &st, 0);
  for (int i = 0; i < 50 && seen_.exits.empty(); ++i) {
    col_->consume();
    usleep(10000);
  }
  ASSERT_EQ(seen_.attempts.size(), 1u);
  EXPECT_EQ(seen_.attempts[0].h.pid, static_cast<__u32>(p));
  EXPECT_STREQ(seen_.attempts[0].filename, "/nonexistent/tool");
  EXPECT_EQ(seen_.attempts[0].result, -ENOENT);
  EXPECT_TRUE(seen_.execs.empty());
}

TEST_F(CollectorTest, UntrackedProcessesAreNotReported) {
  pid_t p = fork();
  if (p == 0) {
    execl("/bin/true", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int st;
  waitpid(p, &st, 0);
  col_->consume();
  for (const auto& e : seen_.execs) EXPECT_NE(e.h.pid, static_cast<__u32>(p));
}

TEST_F(CollectorTest, LongArgvIsCutAt32KiBAndFlagged) {
  std::string big(40000, 'a');
  pid_t p = fork();
  if (p == 0) {
    usleep(50000);
    execl("/bin/true", "true", big.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(col_->track(p, 7).ok());
  int st;
  waitpid(p, &st, 0);
  for (int i = 0; i < 50 && seen_.execs.empty(); ++i) {
    col_->consume();
    usleep(10000);
  }
  ASSERT_EQ(seen_.execs.size(), 1u);
  EXPECT_EQ(seen_.execs[0].argv_len, SA_ARGV_MAX);
  EXPECT_TRUE(seen_.execs[0].h.flags & SA_FLAG_ARGV_CUT);
  EXPECT_EQ(std::string(seen_.execs[0].argv, 5), std::string("true\0", 5));
}

TEST(LooksLikeBash, RecognisesBashAndNotOthers) {
  EXPECT_TRUE(shaudit::bpf::looks_like_bash("/usr/bin/bash"));
  EXPECT_FALSE(shaudit::bpf::looks_like_bash("/usr/bin/dash"));
  EXPECT_FALSE(shaudit::bpf::looks_like_bash("/etc/passwd"));
}

TEST(DynamicSymbols, FindsReadlineVariablesOfBash) {
  // The bash line probe needs these: rl_deprep_terminal (probed) and the variables it reads.
  auto v = shaudit::bpf::dynamic_symbols(
      "/usr/bin/bash", {"rl_deprep_terminal", "rl_line_buffer", "rl_done", "no_such_symbol"});
  ASSERT_EQ(v.size(), 4u);
  EXPECT_NE(v[0], 0u);
  EXPECT_NE(v[1], 0u);
  EXPECT_NE(v[2], 0u);
  EXPECT_EQ(v[3], 0u);
  EXPECT_EQ(shaudit::bpf::dynamic_symbols("/etc/passwd", {"rl_done"}), std::vector<uint64_t>{0});
}

}  // namespace

namespace {

// The first bytes of a file (an image's head, as the kernel reads it into bprm->buf).
std::string head_of(const std::string& path) {
  std::string s(256, '\0');
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return {};
  size_t n = std::fread(s.data(), 1, s.size(), f);
  std::fclose(f);
  s.resize(n);
  return s;
}

constexpr char kLib[] = "/opt/x/libshaudit_preload.so";

uint32_t run(const std::string& head, const std::vector<std::string>& env) {
  auto r = shaudit::bpf::enforce_selftest(kLib, head, env);
  EXPECT_TRUE(r.ok()) << r.message();
  return r.ok() ? *r : 0xffffffffu;
}

TEST(EnforceSelftest, TheKernelTellsImagesWithoutAProgramInterpreter) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to load eBPF programs (CI runs as root)";
  // A dynamic program has PT_INTERP; the loader itself and a static busybox have none; a
  // script or a non-ELF file is not decided by the image check.
  EXPECT_EQ(run(head_of("/bin/true"), {}) & 1u, 0u);
  EXPECT_EQ(run(head_of("/bin/bash"), {}) & 1u, 0u);
  EXPECT_EQ(run(head_of("/lib64/ld-linux-x86-64.so.2"), {}) & 1u, 1u);
  if (access("/bin/busybox", X_OK) == 0 && head_of("/bin/busybox").size() == 256) {
    EXPECT_EQ(run(head_of("/bin/busybox"), {}) & 1u, 1u);
  }
  EXPECT_EQ(run("#!/bin/sh\necho hi\n", {}) & 1u, 0u);
  EXPECT_EQ(run("plain text", {}) & 1u, 0u);
  // A static ELF whose few program headers are all PT_LOAD (type 1).
  std::string st(256, '\0');
  const unsigned char ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memcpy(st.data(), ident, sizeof ident);
  uint64_t phoff = 64;
  uint16_t phentsize = 56, phnum = 2;
  std::memcpy(&st[32], &phoff, 8);
  std::memcpy(&st[54], &phentsize, 2);
  std::memcpy(&st[56], &phnum, 2);
  st[64] = 1;
  st[120] = 1;
  EXPECT_EQ(run(st, {}) & 1u, 1u);
  st[120] = 3;  // the second is PT_INTERP: dynamic
  EXPECT_EQ(run(st, {}) & 1u, 0u);
}

TEST(EnforceSelftest, TheKernelReadsLdPreloadAsTheLoaderDoes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to load eBPF programs (CI runs as root)";
  std::string lib = kLib;
  auto has = [](const std::vector<std::string>& env) { return (run("", env) & 2u) != 0; };
  EXPECT_FALSE(has({}));
  EXPECT_FALSE(has({"PATH=/bin", "HOME=/root"}));
  EXPECT_TRUE(has({"PATH=/bin", "LD_PRELOAD=" + lib, "HOME=/root"}));
  EXPECT_TRUE(has({"LD_PRELOAD=/lib/a.so:" + lib}));
  EXPECT_TRUE(has({"LD_PRELOAD=/lib/a.so " + lib + " /lib/b.so"}));
  EXPECT_TRUE(has({"LD_PRELOAD=" + lib + ":"}));
  EXPECT_FALSE(has({"LD_PRELOAD="}));
  EXPECT_FALSE(has({"LD_PRELOAD=" + lib + ".bak"}));
  EXPECT_FALSE(has({"LD_PRELOAD=" + lib.substr(0, lib.size() - 1)}));
  EXPECT_FALSE(has({"LD_PRELOAD=/y" + lib}));
  EXPECT_FALSE(has({"XLD_PRELOAD=" + lib}));
  EXPECT_FALSE(has({"LD_PRELOADX=" + lib}));
  // The last LD_PRELOAD is the one ld.so uses.
  EXPECT_FALSE(has({"LD_PRELOAD=" + lib, "LD_PRELOAD="}));
  EXPECT_TRUE(has({"LD_PRELOAD=", "LD_PRELOAD=" + lib}));
  // Deep in a big environment.
  std::vector<std::string> big;
  for (int i = 0; i < 900; ++i) big.push_back("V" + std::to_string(i) + "=x");
  big.push_back("LD_PRELOAD=" + lib);
  EXPECT_TRUE(has(big));
}

}  // namespace

TEST(EnforceHostWide, AnLdSoPreloadListingTheInterposerIsHostWideMode) {
  char dir[] = "/tmp/shaudit-hw-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string f = std::string(dir) + "/ld.so.preload";
  auto write = [&](const char* text) {
    FILE* o = std::fopen(f.c_str(), "w");
    std::fputs(text, o);
    std::fclose(o);
  };
  EXPECT_FALSE(shaudit::bpf::host_wide_preload("/usr/lib/libshaudit_preload.so", f));  // none
  write("/usr/lib/libshaudit_preload.so\n");
  EXPECT_TRUE(shaudit::bpf::host_wide_preload("/usr/lib/libshaudit_preload.so", f));
  write("/lib/a.so /usr/lib/libshaudit_preload.so:/lib/b.so\n");
  EXPECT_TRUE(shaudit::bpf::host_wide_preload("/usr/lib/libshaudit_preload.so", f));
  write("/usr/lib/libshaudit_preload.so.old\n#/usr/lib/libshaudit_preload\n");
  EXPECT_FALSE(shaudit::bpf::host_wide_preload("/usr/lib/libshaudit_preload.so", f));
  unlink(f.c_str());
  rmdir(dir);
}
