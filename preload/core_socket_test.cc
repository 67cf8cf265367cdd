// SPDX-License-Identifier: Apache-2.0
// The interposer core driven over a real SOCK_SEQPACKET socket (each scenario in a forked child,
// the test process plays shauditd): report numbers, the backlog and its overflow, line flags.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core.h"
#include "gtest/gtest.h"
#include "shaudit/wire.h"

namespace {

constexpr int kTimeoutMs = 5000;

// One received message: its header and fields in order (data offset within the message kept).
struct Msg {
  shaudit_wire_header h{};
  size_t size = 0;  // bytes received
  struct Field {
    shaudit_wire_field f;
    size_t offset;
    std::string data;
  };
  std::vector<Field> fields;

  const Field* Find(uint16_t tag) const {
    for (const Field& f : fields)
      if (f.f.tag == tag) return &f;
    return nullptr;
  }
  std::string Str(uint16_t tag) const {
    const Field* f = Find(tag);
    return f ? f->data : std::string("<missing>");
  }
  uint64_t U64(uint16_t tag) const {
    const Field* f = Find(tag);
    uint64_t v = ~0ULL;
    if (f && f->data.size() == sizeof v) memcpy(&v, f->data.data(), sizeof v);
    return v;
  }
};

// Decodes one message; false when the header or a field is malformed.
bool Decode(const char* buf, size_t n, Msg* m) {
  if (n < sizeof m->h) return false;
  memcpy(&m->h, buf, sizeof m->h);
  m->size = n;
  size_t at = sizeof m->h;
  while (at < n) {
    Msg::Field f;
    if (n - at < sizeof f.f) return false;
    memcpy(&f.f, buf + at, sizeof f.f);
    at += sizeof f.f;
    if (f.f.length > n - at) return false;
    f.offset = at;
    f.data.assign(buf + at, f.f.length);
    at += f.f.length;
    m->fields.push_back(std::move(f));
  }
  return m->h.magic == SHAUDIT_WIRE_MAGIC && m->h.version == SHAUDIT_WIRE_VERSION &&
         m->h.length == n && m->h.reserved == 0;
}

bool Readable(int fd, int timeout_ms) {
  pollfd p = {fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r == 1;
}

// Receives one message: 1, 0 at end of stream, -1 on timeout or a malformed message.
int Recv(int fd, Msg* m) {
  *m = Msg();
  if (!Readable(fd, kTimeoutMs)) return -1;
  std::vector<char> buf(SHAUDIT_WIRE_MAX_MESSAGE + 1);
  ssize_t n = recv(fd, buf.data(), buf.size(), MSG_TRUNC);
  if (n == 0) return 0;
  if (n < 0 || static_cast<size_t>(n) > SHAUDIT_WIRE_MAX_MESSAGE) return -1;
  return Decode(buf.data(), static_cast<size_t>(n), m) ? 1 : -1;
}

void Signal(int fd) {
  char c = 1;
  ASSERT_EQ(write(fd, &c, 1), 1);
}

bool Await(int fd, int timeout_ms = kTimeoutMs) {
  char c;
  return Readable(fd, timeout_ms) && read(fd, &c, 1) == 1;
}

// The daemon's end: a listening SOCK_SEQPACKET socket in a temporary directory.
class Peer {
 public:
  explicit Peer(int backlog) {
    char dir[] = "/tmp/sa_core_sock.XXXXXX";
    if (!mkdtemp(dir)) return;
    dir_ = dir;
    path_ = dir_ + "/shaudit.sock";
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a = Addr();
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, backlog) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~Peer() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  bool ok() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }

  // A plain client connection (fills a listen queue of length 0).
  int Connect() const {
    int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a = Addr();
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(c);
      return -1;
    }
    return c;
  }
  int Accept() const {
    if (!Readable(fd_, kTimeoutMs)) return -1;
    return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }

 private:
  sockaddr_un Addr() const {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    return a;
  }
  std::string dir_, path_;
  int fd_ = -1;
};

// Runs body in a forked child with the core initialised as if loaded through LD_PRELOAD and
// pointed at sock; to_child / from_child are pipe ends for the two sides to take turns. The
// child's exit status is body's return value.
struct Child {
  pid_t pid = -1;
  int to_child = -1, from_child = -1;

  int Wait() {
    int st = 0;
    if (pid > 0 && waitpid(pid, &st, 0) == pid) pid = -1;
    close(to_child);
    close(from_child);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
};

Child RunCore(const std::string& sock, const std::function<int(int in, int out)>& body) {
  int down[2], up[2];
  Child c;
  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) return c;
  c.pid = fork();
  if (c.pid == 0) {
    close(down[1]);
    close(up[0]);
    std::string env_sock = "SHAUDIT_SOCKET=" + sock;
    char* envp[] = {const_cast<char*>(env_sock.c_str()),
                    const_cast<char*>("LD_PRELOAD=/usr/lib/libshaudit_preload.so"), nullptr};
    char* argv[] = {const_cast<char*>("preload_core_socket_test"), nullptr};
    sa_init(1, argv, envp);
    _exit(sa_enabled() ? body(down[0], up[1]) : 100);
  }
  close(down[0]);
  close(up[1]);
  c.to_child = down[1];
  c.from_child = up[0];
  return c;
}

void Line(const std::string& s, uint32_t flags = 0) {
  sa_report_line(s.data(), s.size(), flags);
}

// Child side: after the peer's go-ahead, retries delivery of the backlog (what sa_fini does at
// exit) until the peer says it has everything.
void FlushUntilTold(int in) {
  for (int i = 0; i < kTimeoutMs / 10; ++i) {
    sa_fini();
    if (Await(in, 10)) return;
  }
}

// Child side of a held-backlog scenario: tells the peer it has reported, then flushes as told.
bool HandOverHeld(int in, int out) {
  Signal(out);
  if (!Await(in)) return false;
  FlushUntilTold(in);
  return true;
}

void ExpectLine(const Msg& m, uint64_t seq, const std::string& text, uint64_t cmd_no,
                uint64_t line_index = 0, uint64_t flags = 0) {
  EXPECT_EQ(m.h.type, SHAUDIT_MSG_LINE);
  EXPECT_EQ(m.h.report_seq, seq);
  EXPECT_EQ(m.h.flags, 0u);
  EXPECT_EQ(m.Str(SHAUDIT_F_TEXT), text);
  EXPECT_EQ(m.U64(SHAUDIT_F_CMD_NO), cmd_no);
  EXPECT_EQ(m.U64(SHAUDIT_F_LINE_INDEX), line_index);
  EXPECT_EQ(m.U64(SHAUDIT_F_LINE_FLAGS), flags);
  ASSERT_FALSE(m.fields.empty());
  EXPECT_EQ(m.fields.back().f.tag, SHAUDIT_F_TEXT);  // last: a cut only shortens the text
}

TEST(CoreSocket, ReportNumbersCountFromOneAndRestartInAForkedChild) {
  Peer peer(8);
  ASSERT_TRUE(peer.ok());
  Child c = RunCore(peer.path(), [](int, int) {
    Line("one");
    Line("two");
    Line("three");
    pid_t g = fork();
    if (g == 0) {
      Line("four");
      Line("five");
      _exit(0);
    }
    int st = 0;
    if (waitpid(g, &st, 0) != g || st != 0) return 1;
    Line("six");
    return 0;
  });
  ASSERT_GT(c.pid, 0);
  pid_t child = c.pid;
  ASSERT_EQ(c.Wait(), 0);

  // The child connected at its first report, the grandchild at its own first one.
  int own = peer.Accept(), forked = peer.Accept();
  ASSERT_GE(own, 0);
  ASSERT_GE(forked, 0);
  Msg m;
  const char* own_texts[] = {"one", "two", "three", "six"};
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_EQ(Recv(own, &m), 1);
    ExpectLine(m, i + 1, own_texts[i], i + 1);
    EXPECT_EQ(m.U64(SHAUDIT_F_PPID), static_cast<uint64_t>(getpid()));
  }
  EXPECT_EQ(Recv(own, &m), 0);
  // The grandchild numbers its reports from 1; its command numbers go on from its parent's.
  const char* forked_texts[] = {"four", "five"};
  for (uint64_t i = 0; i < 2; ++i) {
    ASSERT_EQ(Recv(forked, &m), 1);
    ExpectLine(m, i + 1, forked_texts[i], i + 4);
    EXPECT_EQ(m.U64(SHAUDIT_F_PPID), static_cast<uint64_t>(child));
  }
  EXPECT_EQ(Recv(forked, &m), 0);
  close(own);
  close(forked);
}

// A listen queue of length 0 holding one unaccepted connection: the core's connect fails
// (EAGAIN) until the peer accepts that one.
struct BusyPeer {
  Peer peer{0};
  int queued = peer.ok() ? peer.Connect() : -1;
  ~BusyPeer() {
    if (queued >= 0) close(queued);
  }
  bool ok() const { return queued >= 0; }
  // Once the child has reported: frees the queue, lets the child flush and accepts its
  // connection. The backlog begins with a fresh hello that takes the first report number.
  void AcceptHeld(Child& c, int* conn, size_t* hello_size) {
    ASSERT_TRUE(Await(c.from_child));
    int a = peer.Accept();
    if (a >= 0) close(a);
    close(queued);
    queued = -1;
    Signal(c.to_child);
    *conn = peer.Accept();
    ASSERT_GE(*conn, 0);
    Msg m;
    ASSERT_EQ(Recv(*conn, &m), 1);
    EXPECT_EQ(m.h.type, SHAUDIT_MSG_HELLO);
    EXPECT_EQ(m.h.report_seq, 1u);
    EXPECT_EQ(m.U64(SHAUDIT_F_HELLO_FLAGS), 0u);  // not a shell, loaded by LD_PRELOAD
    EXPECT_EQ(m.Find(SHAUDIT_F_EXE), nullptr);
    *hello_size = m.size;
  }
};

TEST(CoreSocket, LinesHeldWhileThePeerDoesNotAcceptArriveInOrderAfterAHello) {
  BusyPeer busy;
  ASSERT_TRUE(busy.ok());
  Child c = RunCore(busy.peer.path(), [](int in, int out) {
    for (int i = 1; i <= 5; ++i) Line("line " + std::to_string(i));
    return HandOverHeld(in, out) ? 0 : 1;
  });
  ASSERT_GT(c.pid, 0);
  int conn = -1;
  size_t hello = 0;
  ASSERT_NO_FATAL_FAILURE(busy.AcceptHeld(c, &conn, &hello));
  Msg m;
  for (uint64_t i = 1; i <= 5; ++i) {
    ASSERT_EQ(Recv(conn, &m), 1);
    ExpectLine(m, i + 1, "line " + std::to_string(i), i);
  }
  Signal(c.to_child);
  EXPECT_EQ(c.Wait(), 0);
  EXPECT_EQ(Recv(conn, &m), 0);  // nothing more: each held line arrived once
  close(conn);
}

TEST(CoreSocket, BacklogOverflowLosesLaterLinesAndLeavesAGapInReportNumbers) {
  constexpr int kLines = 12;
  constexpr size_t kText = 6000;  // 12 such lines need more than the 64 KiB backlog
  BusyPeer busy;
  ASSERT_TRUE(busy.ok());
  Child c = RunCore(busy.peer.path(), [](int in, int out) {
    for (int i = 1; i <= kLines; ++i) Line(std::string(kText, static_cast<char>('a' + i)));
    if (!HandOverHeld(in, out)) return 1;
    Line("end");  // sent at once: the backlog is empty again
    return 0;
  });
  ASSERT_GT(c.pid, 0);
  int conn = -1;
  size_t hello = 0;
  ASSERT_NO_FATAL_FAILURE(busy.AcceptHeld(c, &conn, &hello));
  Msg m;
  // Held: the hello and as many (equal-sized) lines as fit in 65536 bytes, in order.
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 2, std::string(kText, 'b'), 1);
  const size_t line = m.size;
  const uint64_t held = (65536 - hello) / line;
  ASSERT_GE(held, 1u);
  ASSERT_LT(held, static_cast<uint64_t>(kLines));
  for (uint64_t i = 2; i <= held; ++i) {
    ASSERT_EQ(Recv(conn, &m), 1);
    ExpectLine(m, i + 1, std::string(kText, static_cast<char>('a' + i)), i);
    EXPECT_EQ(m.size, line);
  }
  Signal(c.to_child);
  // The lost lines kept their report numbers: the next report shows the gap.
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, kLines + 2, "end", kLines + 1);
  EXPECT_EQ(c.Wait(), 0);
  EXPECT_EQ(Recv(conn, &m), 0);
  close(conn);
}

TEST(CoreSocket, ContinuationLinesAndALineCutToTheMessageLimit) {
  Peer peer(8);
  ASSERT_TRUE(peer.ok());
  constexpr size_t kLong = 200000;
  Child c = RunCore(peer.path(), [](int, int) {
    Line("for i in 1 2");
    Line("do echo $i", SHAUDIT_LINE_CONTINUATION);
    Line("done", SHAUDIT_LINE_CONTINUATION);
    Line(std::string(kLong, 'x'));
    return 0;
  });
  ASSERT_GT(c.pid, 0);
  int conn = peer.Accept();
  ASSERT_GE(conn, 0);
  Msg m;
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 1, "for i in 1 2", 1, 0, 0);
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 2, "do echo $i", 1, 1, SHAUDIT_LINE_CONTINUATION);
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 3, "done", 1, 2, SHAUDIT_LINE_CONTINUATION);
  // The long line: a new command, its message exactly the limit, the text cut and flagged.
  ASSERT_EQ(Recv(conn, &m), 1);
  EXPECT_EQ(m.size, SHAUDIT_WIRE_MAX_MESSAGE);
  ASSERT_FALSE(m.fields.empty());
  const Msg::Field& text = m.fields.back();
  EXPECT_EQ(text.f.tag, SHAUDIT_F_TEXT);
  EXPECT_EQ(text.f.flags, SHAUDIT_FIELD_TRUNCATED);
  EXPECT_EQ(text.data, std::string(SHAUDIT_WIRE_MAX_MESSAGE - text.offset, 'x'));
  EXPECT_LT(text.data.size(), kLong);
  for (size_t i = 0; i + 1 < m.fields.size(); ++i) EXPECT_EQ(m.fields[i].f.flags, 0u);
  ExpectLine(m, 4, text.data, 2, 0, 0);
  EXPECT_EQ(c.Wait(), 0);
  EXPECT_EQ(Recv(conn, &m), 0);
  close(conn);
}

TEST(CoreSocket, AReadlineProgramSaysHelloAtItsFirstLineAndNamesItsLines) {
  Peer peer(8);
  ASSERT_TRUE(peer.ok());
  Child c = RunCore(peer.path(), [](int, int) {
    if (!sa_repl_begin("python3")) return 1;
    Line("import os", SHAUDIT_LINE_REPL);
    if (!sa_repl_begin("other")) return 2;  // once begun, the name stays
    Line("os.system('id')", SHAUDIT_LINE_REPL);
    pid_t g = vfork();
    if (g == 0) _exit(sa_repl_begin("python3") ? 3 : 0);  // a vfork child reports no lines
    int st = 0;
    if (waitpid(g, &st, 0) != g || st != 0) return 3;
    return 0;
  });
  ASSERT_GT(c.pid, 0);
  ASSERT_EQ(c.Wait(), 0);
  int conn = peer.Accept();
  ASSERT_GE(conn, 0);
  Msg m;
  ASSERT_EQ(Recv(conn, &m), 1);
  EXPECT_EQ(m.h.type, SHAUDIT_MSG_HELLO);
  EXPECT_EQ(m.h.report_seq, 1u);
  // (the test's standard input may or may not be a terminal)
  EXPECT_EQ(m.U64(SHAUDIT_F_HELLO_FLAGS) & ~uint64_t{SHAUDIT_HELLO_INTERACTIVE},
            uint64_t{SHAUDIT_HELLO_REPL});
  EXPECT_NE(m.Find(SHAUDIT_F_EXE), nullptr);
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 2, "import os", 1, 0, SHAUDIT_LINE_REPL);
  EXPECT_EQ(m.Str(SHAUDIT_F_SHELL), "python3");
  ASSERT_EQ(Recv(conn, &m), 1);
  ExpectLine(m, 3, "os.system('id')", 2, 0, SHAUDIT_LINE_REPL);
  EXPECT_EQ(m.Str(SHAUDIT_F_SHELL), "python3");
  EXPECT_EQ(Recv(conn, &m), 0);
  close(conn);
}

}  // namespace
