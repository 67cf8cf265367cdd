// SPDX-License-Identifier: Apache-2.0
// writer_bench: a benchmark (not a test) of shauditd's signing log writer.
//
// It starts the real shauditd on a private configuration (bpf: off), pinned to one CPU
// (--daemon-cpu, default 1) while every client, the log tailer and the bench itself run on
// another (--client-cpu, default 0), and measures:
//
//  (a) throughput: --clients processes send --records command lines in total as fast as
//      possible through the C API (shaudit_client_set_timeout_ms(c, -1): nothing is dropped);
//      records/s from the first send to the moment the tailer sees the last one in the log,
//      and the log must hold exactly as many of them as were sent;
//  (b) latency at paced rates (--rates): each line's text carries its CLOCK_REALTIME send
//      time; a tailer (inotify IN_MODIFY + read) stamps when each line appears in the file
//      (latency to file) and, when a seal line appears, stamps every earlier unsealed line
//      (latency to sealed);
//  (c) SIGTERM, then the wall time of `shaudit verify LOG --pubkey KEY.pub` on the log
//      produced by (a) and (b); with the default 1,000,000 throughput records this is the
//      one-million-record verify figure.
//
// Targets: >= 100,000 records/s; p99 to file < 2 ms; p99 to sealed < seal interval + 5 ms;
// verify of 1M records < 10 s. Every line starting with "RESULT " is machine-readable.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "shaudit/crypto.h"
#include "shaudit/json.h"
#include "shaudit/record.h"
#include "shaudit/shaudit.h"

namespace {

// ---------------------------------------------------------------------------------------
// small helpers

int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "writer_bench: %s\n", msg.c_str());
  std::exit(1);
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Value of "key":"..." in a canonical record line (keys never occur unescaped inside strings).
std::string_view str_field(std::string_view line, std::string_view key) {
  char pat[64];
  int n = std::snprintf(pat, sizeof pat, "\"%.*s\":\"", static_cast<int>(key.size()), key.data());
  size_t p = line.find(std::string_view(pat, static_cast<size_t>(n)));
  if (p == std::string_view::npos) return {};
  p += static_cast<size_t>(n);
  size_t e = line.find('"', p);
  if (e == std::string_view::npos) return {};
  return line.substr(p, e - p);
}

int64_t parse_i64(std::string_view s) {
  int64_t v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

int64_t record_time(std::string_view line) {
  auto t = shaudit::record::parse_time(str_field(line, "time"));
  return t ? *t : 0;
}

struct Pct {
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0, mean = 0;  // milliseconds
};

Pct percentiles(std::vector<int64_t> v) {
  Pct p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t idx = static_cast<size_t>(q * static_cast<double>(v.size()));  // nearest rank
    if (idx >= v.size()) idx = v.size() - 1;
    return static_cast<double>(v[idx]) / 1e6;
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.max = static_cast<double>(v.back()) / 1e6;
  long double sum = 0;
  for (auto x : v) sum += x;
  p.mean = static_cast<double>(sum / v.size()) / 1e6;
  return p;
}

// CPU time (ms) and context switches of each thread of a process (tid order).
struct ThreadUse {
  int tid;
  double cpu_ms;
  long vcsw, ivcsw;
};

std::vector<ThreadUse> thread_use(pid_t pid) {
  std::vector<ThreadUse> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  long hz = sysconf(_SC_CLK_TCK);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    ThreadUse u{std::atoi(e->d_name), 0, 0, 0};
    std::ifstream st(dir + "/" + e->d_name + "/stat");
    std::string s((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    auto rp = s.rfind(')');
    if (rp != std::string::npos) {
      std::istringstream is(s.substr(rp + 2));
      std::string f;
      std::vector<std::string> fields;
      while (is >> f) fields.push_back(f);
      // fields[0] is field 3 (state); utime is field 14, stime field 15.
      if (fields.size() > 12)
        u.cpu_ms =
            (std::stod(fields[11]) + std::stod(fields[12])) * 1000.0 / static_cast<double>(hz);
    }
    std::ifstream ss(dir + "/" + e->d_name + "/status");
    std::string line;
    while (std::getline(ss, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) u.vcsw = std::atol(line.c_str() + 24);
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) u.ivcsw = std::atol(line.c_str() + 27);
    }
    out.push_back(u);
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.tid < b.tid; });
  return out;
}

// Machine load over a phase: busy time of every CPU, and what of it was the daemon's and
// this benchmark's own (its threads and reaped client processes). The rest is other load
// on the (shared) machine: the figures of a phase with much of it are not trustworthy.
struct Meter {
  struct Snap {
    std::vector<std::pair<double, double>> cpu;  // per CPU: busy s, steal s
    double daemon = 0, self = 0;
    int64_t mono = 0;
  };
  static Snap snap(pid_t daemon) {
    Snap s;
    s.mono = mono_ns();
    std::ifstream in("/proc/stat");
    std::string line;
    double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    while (std::getline(in, line)) {
      if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] == ' ') continue;
      std::istringstream is(line);
      std::string name;
      double v[10] = {0};
      is >> name;
      for (double& x : v) is >> x;
      // user nice system idle iowait irq softirq steal guest guest_nice
      s.cpu.push_back({(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz, v[7] / hz});
    }
    if (daemon > 0)
      for (auto& u : thread_use(daemon)) s.daemon += u.cpu_ms / 1000;
    rusage a{}, b{};
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    auto sec = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    s.self = sec(a.ru_utime) + sec(a.ru_stime) + sec(b.ru_utime) + sec(b.ru_stime);
    return s;
  }
  // Prints the load between two snapshots; returns the other load in CPUs (0.25 = a quarter
  // of one CPU on average).
  static double report(const Snap& a, const Snap& b) {
    double wall = static_cast<double>(b.mono - a.mono) / 1e9;
    if (wall <= 0) return 0;
    std::string per;
    double busy = 0, steal = 0;
    for (size_t i = 0; i < a.cpu.size() && i < b.cpu.size(); ++i) {
      double bz = b.cpu[i].first - a.cpu[i].first;
      busy += bz;
      steal += b.cpu[i].second - a.cpu[i].second;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%scpu%zu %.0f%%", i ? ", " : "", i, 100 * bz / wall);
      per += buf;
    }
    double daemon = b.daemon - a.daemon, self = b.self - a.self;
    double other = std::max(0.0, busy - daemon - self) / wall;
    std::printf(
        "  machine: busy %s; steal %.1f%%; daemon %.2f CPU, bench+clients %.2f CPU, "
        "other load %.2f CPU%s\n",
        per.c_str(), 100 * steal / wall, daemon / wall, self / wall, other,
        other > 0.1 ? "  ** NOISY: other processes were running **" : "");
    return other;
  }
};

// ---------------------------------------------------------------------------------------
// options

struct Options {
  std::string shauditd, shaudit_cli;
  std::string workdir;  // empty: a fresh directory under /var/tmp
  bool keep = false;
  int clients = 4;
  uint64_t records = 1000000;
  std::vector<uint64_t> rates = {20000, 2000};
  double latency_seconds = 5;
  uint64_t seal_interval_ms = 100;
  uint64_t seal_every = 10000;
  uint64_t queue_capacity = 65536;
  bool forward_secure = true;  // shauditd's default
  uint64_t seal_epoch_s = 60;  // shauditd's default
  int daemon_cpu = 1;
  int client_cpu = 0;
  int daemon_nice = 0;
  bool tp_inotify = false;  // tail the throughput phase with inotify too (costs the daemon)
  std::string perf_out;     // record the daemon with perf during the throughput phase
  std::string text = "make -j8 && ./run_tests --filter=all";
};

void usage() {
  std::fputs(
      "usage: writer_bench --shauditd PATH --shaudit PATH [--clients N] [--records N]\n"
      "         [--rates R1,R2,...] [--latency-seconds S] [--seal-interval-ms MS]\n"
      "         [--seal-every N] [--queue-capacity N] [--daemon-cpu C] [--client-cpu C]\n"
      "         [--daemon-nice N] [--throughput-inotify] [--workdir DIR] [--keep]\n"
      "         [--perf-out FILE] [--forward-secure on|off] [--seal-epoch-s N]\n"
      "  --records 0 skips the throughput phase; --rates '' skips the latency phase.\n"
      "  --forward-secure (default on) and --seal-epoch-s (default 60) go into the config as\n"
      "  forward_secure and seal_epoch_s; off signs every seal with the fixed signing key.\n",
      stderr);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        die("missing value for " + a);
      }
      return argv[++i];
    };
    if (a == "--shauditd")
      o.shauditd = val();
    else if (a == "--shaudit")
      o.shaudit_cli = val();
    else if (a == "--workdir")
      o.workdir = val();
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--clients")
      o.clients = std::stoi(val());
    else if (a == "--records")
      o.records = std::stoull(val());
    else if (a == "--rates") {
      o.rates.clear();
      for (auto& r : split(val(), ',')) o.rates.push_back(std::stoull(r));
    } else if (a == "--latency-seconds")
      o.latency_seconds = std::stod(val());
    else if (a == "--seal-interval-ms")
      o.seal_interval_ms = std::stoull(val());
    else if (a == "--seal-every")
      o.seal_every = std::stoull(val());
    else if (a == "--queue-capacity")
      o.queue_capacity = std::stoull(val());
    else if (a == "--daemon-cpu")
      o.daemon_cpu = std::stoi(val());
    else if (a == "--client-cpu")
      o.client_cpu = std::stoi(val());
    else if (a == "--daemon-nice")
      o.daemon_nice = std::stoi(val());
    else if (a == "--throughput-inotify")
      o.tp_inotify = true;
    else if (a == "--perf-out")
      o.perf_out = val();
    else if (a == "--forward-secure") {
      std::string v = val();
      if (v != "on" && v != "off") die("--forward-secure takes on or off, not " + v);
      o.forward_secure = v == "on";
    } else if (a == "--seal-epoch-s")
      o.seal_epoch_s = std::stoull(val());
    else if (a == "--help" || a == "-h") {
      usage();
      std::exit(0);
    } else {
      usage();
      die("unknown argument " + a);
    }
  }
  if (o.shauditd.empty() || o.shaudit_cli.empty()) {
    usage();
    die("--shauditd and --shaudit are required");
  }
  if (o.clients < 1) die("--clients must be >= 1");
  return o;
}

// ---------------------------------------------------------------------------------------
// the log tailer

struct LatPhase {
  std::vector<int64_t> to_file;       // seen in file - sent
  std::vector<int64_t> to_sealed;     // seal seen in file - sent
  std::vector<int64_t> daemon_write;  // record's "time" - sent
  std::vector<int64_t> daemon_seal;   // sealing record's "time" - sent
  std::vector<int64_t> pending;       // sent times of lines seen but not yet sealed
};

class Tailer {
 public:
  explicit Tailer(std::string path) : path_(std::move(path)) {}
  ~Tailer() { stop(); }

  void start(int nphases) {
    phases_.resize(static_cast<size_t>(nphases));
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) die("cannot open log " + path_ + ": " + std::strerror(errno));
    ino_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino_ < 0) die(std::string("inotify: ") + std::strerror(errno));
    set_inotify(true);
    th_ = std::thread([this] { run(); });
  }

  // With inotify, the tailer wakes on every write (IN_MODIFY): the latency phases need
  // that. The watch costs the writer a wake-up per write(2), so the throughput phase tails
  // by polling read (every 1 ms) instead, which leaves the daemon unperturbed.
  void set_inotify(bool on) {
    if (on && wd_ < 0) {
      wd_ = inotify_add_watch(ino_, path_.c_str(), IN_MODIFY);
      if (wd_ < 0) die(std::string("inotify_add_watch: ") + std::strerror(errno));
    } else if (!on && wd_ >= 0) {
      inotify_rm_watch(ino_, wd_);
      wd_ = -1;
    }
    inotify_on_.store(on);
  }

  // Stops after reading everything in the file now.
  void stop() {
    if (!th_.joinable()) return;
    stop_.store(true);
    th_.join();
    ::close(fd_);
    ::close(ino_);
  }

  // Throughput phase: waits until `expected` "tp" lines were seen; returns the realtime
  // stamp of that moment, or 0 on timeout (no progress for stall_ms).
  int64_t wait_tp(uint64_t expected, int64_t stall_ms) {
    std::unique_lock lk(mu_);
    uint64_t last = tp_seen_;
    int64_t last_progress = mono_ns();
    while (tp_seen_ < expected) {
      cv_.wait_for(lk, std::chrono::milliseconds(200));
      if (tp_seen_ != last) {
        last = tp_seen_;
        last_progress = mono_ns();
      } else if (mono_ns() - last_progress > stall_ms * 1000000) {
        return 0;
      }
    }
    return tp_done_stamp_;
  }

  // Latency phase: waits until `expected` lines of the phase are sealed.
  bool wait_sealed(int phase, size_t expected, int64_t timeout_ms) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] {
      return phases_[static_cast<size_t>(phase)].to_sealed.size() >= expected;
    });
  }

  // Waits until no line has appeared for quiet_ms (and everything seen is sealed).
  void wait_quiet(int64_t quiet_ms, int64_t timeout_ms) {
    int64_t end = mono_ns() + timeout_ms * 1000000;
    while (mono_ns() < end) {
      {
        std::lock_guard lk(mu_);
        if (lines_ > 0 && unsealed_ == 0 && mono_ns() - last_line_mono_ > quiet_ms * 1000000)
          return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  LatPhase take_phase(int phase) {
    std::lock_guard lk(mu_);
    return std::move(phases_[static_cast<size_t>(phase)]);
  }

  struct TpInfo {
    uint64_t seen;
    int64_t first_time, last_time;  // "time" of the first and last tp record
    uint64_t bad_lines;
  };
  TpInfo tp_info() {
    std::lock_guard lk(mu_);
    return {tp_seen_, tp_first_time_, tp_last_time_, bad_lines_};
  }
  uint64_t lines() {
    std::lock_guard lk(mu_);
    return lines_;
  }
  uint64_t seals() {
    std::lock_guard lk(mu_);
    return seals_;
  }
  uint64_t epoch_seals() {
    std::lock_guard lk(mu_);
    return epoch_seals_;
  }
  uint64_t losses() {
    std::lock_guard lk(mu_);
    return losses_;
  }

  void set_tp_expected(uint64_t n) {
    std::lock_guard lk(mu_);
    tp_expected_ = n;
  }

 private:
  void run() {
    std::vector<char> chunk(1 << 20);
    std::string carry;
    bool final_pass = false;
    while (true) {
      ssize_t n = ::read(fd_, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die(std::string("read log: ") + std::strerror(errno));
      if (n > 0) {
        int64_t stamp = realtime_ns();
        process(std::string_view(chunk.data(), static_cast<size_t>(n)), carry, stamp);
        continue;
      }
      // At the end of the file: wait for the next write.
      if (final_pass) break;
      if (stop_.load()) {
        final_pass = true;  // one more read picks up anything written before stop()
        continue;
      }
      if (!inotify_on_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      pollfd p{ino_, POLLIN, 0};
      int r = ::poll(&p, 1, 50);
      if (r > 0) {
        char ev[4096];
        while (::read(ino_, ev, sizeof ev) > 0) {
        }
      }
    }
  }

  void process(std::string_view data, std::string& carry, int64_t stamp) {
    std::lock_guard lk(mu_);
    size_t start = 0;
    while (true) {
      size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        carry.append(data.substr(start));
        break;
      }
      if (carry.empty()) {
        line(data.substr(start, nl - start), stamp);
      } else {
        carry.append(data.substr(start, nl - start));
        line(carry, stamp);
        carry.clear();
      }
      start = nl + 1;
    }
    last_line_mono_ = mono_ns();
    cv_.notify_all();
  }

  void line(std::string_view l, int64_t stamp) {
    ++lines_;
    std::string_view type = str_field(l, "type");
    if (type == "seal") {
      ++seals_;
      if (l.find("\"next_pub_b64\":\"") != std::string_view::npos) ++epoch_seals_;
      unsealed_ = 0;
      if (!pending_phases_.empty()) {
        int64_t seal_time = record_time(l);
        for (int ph : pending_phases_) {
          auto& p = phases_[static_cast<size_t>(ph)];
          for (int64_t sent : p.pending) {
            p.to_sealed.push_back(stamp - sent);
            p.daemon_seal.push_back(seal_time - sent);
          }
          p.pending.clear();
        }
        pending_phases_.clear();
      }
      return;
    }
    ++unsealed_;
    if (type == "loss") {
      ++losses_;
      return;
    }
    if (type != "command") return;
    std::string_view text = str_field(l, "text");
    if (text.rfind("tp ", 0) == 0) {
      ++tp_seen_;
      if (tp_seen_ == 1) tp_first_time_ = record_time(l);
      if (tp_seen_ == tp_expected_) {
        tp_last_time_ = record_time(l);
        tp_done_stamp_ = stamp;
      }
      return;
    }
    if (text.rfind("lat", 0) == 0) {
      // "lat<phase> <sent_ns> <i> <payload>"
      size_t sp = text.find(' ');
      if (sp == std::string_view::npos) {
        ++bad_lines_;
        return;
      }
      int ph = static_cast<int>(parse_i64(text.substr(3, sp - 3)));
      size_t sp2 = text.find(' ', sp + 1);
      int64_t sent = parse_i64(text.substr(
          sp + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp - 1));
      if (ph < 0 || static_cast<size_t>(ph) >= phases_.size() || sent <= 0) {
        ++bad_lines_;
        return;
      }
      auto& p = phases_[static_cast<size_t>(ph)];
      p.to_file.push_back(stamp - sent);
      p.daemon_write.push_back(record_time(l) - sent);
      p.pending.push_back(sent);
      if (std::find(pending_phases_.begin(), pending_phases_.end(), ph) == pending_phases_.end())
        pending_phases_.push_back(ph);
    }
  }

  std::string path_;
  int fd_ = -1, ino_ = -1, wd_ = -1;
  std::atomic<bool> inotify_on_{false};
  std::thread th_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  // guarded by mu_
  std::vector<LatPhase> phases_;
  std::vector<int> pending_phases_;
  uint64_t lines_ = 0, seals_ = 0, epoch_seals_ = 0, losses_ = 0, unsealed_ = 0, bad_lines_ = 0;
  uint64_t tp_seen_ = 0, tp_expected_ = UINT64_MAX;
  int64_t tp_first_time_ = 0, tp_last_time_ = 0, tp_done_stamp_ = 0;
  int64_t last_line_mono_ = 0;
};

// ---------------------------------------------------------------------------------------
// processes

pid_t spawn(const std::vector<std::string>& args, int cpu, const std::string& out_path,
            const std::string& err_path, int nice_value = 0) {
  std::vector<char*> av;
  for (auto& a : args) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
  } else {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n; ++i) CPU_SET(static_cast<int>(i), &set);
  }
  pid_t pid = fork();
  if (pid < 0) die(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    sched_setaffinity(0, sizeof set, &set);
    if (nice_value != 0) setpriority(PRIO_PROCESS, 0, nice_value);
    if (!out_path.empty()) {
      int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 1);
    }
    if (!err_path.empty()) {
      int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) dup2(fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
  return pid;
}

// Waits for pid up to timeout_ms; returns the wait status, or -1 on timeout.
int wait_for(pid_t pid, int64_t timeout_ms, rusage* ru = nullptr) {
  int64_t end = mono_ns() + timeout_ms * 1000000;
  while (true) {
    int st = 0;
    pid_t r = ru ? wait4(pid, &st, WNOHANG, ru) : waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return -2;
    if (mono_ns() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string control_request(const std::string& path, const std::string& req) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return {};
  }
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Throughput clients: forked before any thread exists; each waits for its go byte.
struct ClientProcs {
  std::vector<pid_t> pids;
  int go_w = -1;

  void fork_all(int n, uint64_t per_client, uint64_t extra_for_first, const std::string& socket,
                const std::string& text) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) die("pipe");
    for (int i = 0; i < n; ++i) {
      uint64_t count = per_client + (i == 0 ? extra_for_first : 0);
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) {
        ::close(p[1]);
        char c;
        ssize_t r;
        do r = ::read(p[0], &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1 || c != 'g') _exit(3);
        shaudit_client* cl = shaudit_client_open(socket.c_str());
        if (!cl) _exit(4);
        shaudit_client_set_timeout_ms(cl, -1);
        char line[512];
        int failures = 0;
        for (uint64_t k = 0; k < count; ++k) {
          int len = std::snprintf(line, sizeof line, "tp %d.%llu %s", i,
                                  static_cast<unsigned long long>(k), text.c_str());
          if (shaudit_client_report_line(cl, "bench", line, static_cast<size_t>(len)) != 0)
            ++failures;
        }
        shaudit_client_close(cl);
        _exit(failures ? 5 : 0);
      }
      pids.push_back(pid);
    }
    ::close(p[0]);
    go_w = p[1];
  }

  void go() {
    std::string g(pids.size(), 'g');
    if (::write(go_w, g.data(), g.size()) != static_cast<ssize_t>(g.size())) die("go pipe");
    ::close(go_w);
    go_w = -1;
  }

  // Returns the number of clients that failed.
  int reap(int64_t timeout_ms) {
    int failed = 0;
    for (pid_t pid : pids) {
      int st = wait_for(pid, timeout_ms);
      if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        ++failed;
      } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        ++failed;
      }
    }
    pids.clear();
    return failed;
  }

  void abort_all() {
    for (pid_t pid : pids) kill(pid, SIGKILL);
    for (pid_t pid : pids) waitpid(pid, nullptr, 0);
    pids.clear();
  }
};

pid_t g_daemon = -1;
pid_t g_perf = -1;
ClientProcs* g_clients = nullptr;

void cleanup_children() {
  if (g_clients) g_clients->abort_all();
  if (g_perf > 0) {
    kill(g_perf, SIGINT);
    waitpid(g_perf, nullptr, 0);
    g_perf = -1;
  }
  if (g_daemon > 0) {
    kill(g_daemon, SIGKILL);
    waitpid(g_daemon, nullptr, 0);
    g_daemon = -1;
  }
}

const char* verdict(bool ok) {
  return ok ? "PASS" : "MISS";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (o.daemon_cpu >= ncpu || o.client_cpu >= ncpu)
    die("this machine has only " + std::to_string(ncpu) + " CPUs");
  if (!pin_to(o.client_cpu)) die(std::string("sched_setaffinity: ") + std::strerror(errno));
  std::atexit(cleanup_children);
  signal(SIGPIPE, SIG_IGN);

  // Work directory, key, config.
  namespace fs = std::filesystem;
  std::string dir = o.workdir;
  if (dir.empty()) {
    char tmpl[] = "/var/tmp/shaudit-bench.XXXXXX";
    if (!mkdtemp(tmpl)) die(std::string("mkdtemp: ") + std::strerror(errno));
    dir = tmpl;
  } else {
    fs::create_directories(dir);
  }
  std::string key = dir + "/signing.key", pub = key + ".pub", log = dir + "/audit.jsonl",
              sock = dir + "/shaudit.sock", ctl = dir + "/control.sock",
              cfg = dir + "/shauditd.yaml", derr = dir + "/shauditd.stderr", state = dir + "/state";
  // A fresh key and state directory every run: with forward_secure on, shauditd moves the
  // key into state/key-state and erases it from the key file.
  for (auto& p : {key, pub, log, sock, ctl}) ::unlink(p.c_str());
  fs::remove_all(state);
  {
    auto k = shaudit::crypto::SigningKey::generate();
    if (!k) die(k.message());
    auto r = k->save(key);
    if (!r) die(r.message());
    std::ofstream c(cfg);
    c << "socket: " << sock << "\ncontrol_socket: " << ctl << "\nlog: " << log
      << "\nsigning_key: " << key << "\nstate_dir: " << state
      << "\nbpf: off\nseal_interval_ms: " << o.seal_interval_ms << "\nseal_every: " << o.seal_every
      << "\nqueue_capacity: " << o.queue_capacity
      << "\nforward_secure: " << (o.forward_secure ? "true" : "false")
      << "\nseal_epoch_s: " << o.seal_epoch_s << "\n";
  }

  // Throughput clients are forked now, before any thread exists.
  uint64_t per_client = o.records / static_cast<uint64_t>(o.clients);
  uint64_t extra = o.records - per_client * static_cast<uint64_t>(o.clients);
  ClientProcs clients;
  g_clients = &clients;
  if (o.records > 0) clients.fork_all(o.clients, per_client, extra, sock, o.text);

  std::printf("writer_bench: shauditd on CPU %d, clients/tailer on CPU %d, workdir %s\n",
              o.daemon_cpu, o.client_cpu, dir.c_str());
  std::printf(
      "config: seal_interval_ms=%llu seal_every=%llu queue_capacity=%llu "
      "forward_secure=%s seal_epoch_s=%llu\n",
      static_cast<unsigned long long>(o.seal_interval_ms),
      static_cast<unsigned long long>(o.seal_every),
      static_cast<unsigned long long>(o.queue_capacity), o.forward_secure ? "on" : "off",
      static_cast<unsigned long long>(o.seal_epoch_s));
  // Start the daemon and wait for its socket.
  g_daemon = spawn({o.shauditd, "--config", cfg}, o.daemon_cpu, "", derr, o.daemon_nice);
  std::printf("shauditd pid %d%s\n", static_cast<int>(g_daemon),
              o.daemon_nice ? (" (nice " + std::to_string(o.daemon_nice) + ")").c_str() : "");
  std::fflush(stdout);
  {
    int64_t end = mono_ns() + 10'000'000'000;
    while (true) {
      int st;
      if (waitpid(g_daemon, &st, WNOHANG) == g_daemon) {
        g_daemon = -1;
        die("shauditd exited at start; see " + derr);
      }
      if (shaudit_client* c = shaudit_client_open(sock.c_str())) {
        shaudit_client_close(c);
        break;
      }
      if (mono_ns() > end) die("shauditd did not become ready");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  int nphases = static_cast<int>(o.rates.size());
  Tailer tail(log);
  tail.start(std::max(nphases, 1));
  tail.wait_quiet(150, 5000);

  bool all_ok = true;
  double tp_rate = 0;

  // ---- (a) throughput
  if (o.records > 0) {
    tail.set_tp_expected(o.records);
    if (!o.perf_out.empty()) {
      g_perf = spawn({"/usr/bin/perf", "record", "-q", "--call-graph", "dwarf,32768", "-F", "1999",
                      "-p", std::to_string(g_daemon), "-o", o.perf_out},
                     o.client_cpu, "/dev/null", dir + "/perf.stderr");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    tail.set_inotify(o.tp_inotify);
    auto use0 = thread_use(g_daemon);
    auto m0 = Meter::snap(g_daemon);
    int64_t t0 = realtime_ns();
    clients.go();
    int failed = clients.reap(600'000);
    int64_t t_sent = realtime_ns();
    int64_t t_end = tail.wait_tp(o.records, 15000);
    auto use1 = thread_use(g_daemon);
    auto m1 = Meter::snap(g_daemon);
    tail.set_inotify(true);
    if (g_perf > 0) {
      kill(g_perf, SIGINT);
      waitpid(g_perf, nullptr, 0);
      g_perf = -1;
    }
    auto info = tail.tp_info();
    if (t_end == 0 || failed) {
      std::printf("throughput: FAILED: %d client(s) failed; %llu of %llu records reached the log\n",
                  failed, static_cast<unsigned long long>(info.seen),
                  static_cast<unsigned long long>(o.records));
      all_ok = false;
    } else {
      double secs = static_cast<double>(t_end - t0) / 1e9;
      tp_rate = static_cast<double>(o.records) / secs;
      double wsecs = static_cast<double>(info.last_time - info.first_time) / 1e9;
      std::printf(
          "throughput: %llu records from %d client processes in %.3f s = %.0f records/s "
          "(first send -> last record in file)\n",
          static_cast<unsigned long long>(o.records), o.clients, secs, tp_rate);
      std::printf(
          "  senders finished after %.3f s; writer's own clock (first -> last record "
          "time field): %.3f s = %.0f records/s\n",
          static_cast<double>(t_sent - t0) / 1e9, wsecs,
          wsecs > 0 ? static_cast<double>(o.records - 1) / wsecs : 0.0);
    }
    // Count check: wait for the throughput records to settle, then compare.
    tail.wait_quiet(2 * static_cast<int64_t>(o.seal_interval_ms) + 50, 10000);
    info = tail.tp_info();
    bool count_ok = info.seen == o.records && tail.losses() == 0;
    std::printf("  count check: sent %llu, in log %llu, loss records %llu -> %s\n",
                static_cast<unsigned long long>(o.records),
                static_cast<unsigned long long>(info.seen),
                static_cast<unsigned long long>(tail.losses()), count_ok ? "OK" : "MISMATCH");
    if (!count_ok) all_ok = false;
    const char* names[] = {"main", "writer", "receiver"};
    double total_cpu = 0;
    for (size_t i = 0; i < use1.size(); ++i) {
      const ThreadUse* before = nullptr;
      for (auto& u : use0)
        if (u.tid == use1[i].tid) before = &u;
      double cpu = use1[i].cpu_ms - (before ? before->cpu_ms : 0);
      total_cpu += cpu;
      std::printf("  daemon thread %-8s cpu %8.0f ms  voluntary cs %8ld  involuntary cs %8ld\n",
                  i < 3 ? names[i] : "other", cpu, use1[i].vcsw - (before ? before->vcsw : 0),
                  use1[i].ivcsw - (before ? before->ivcsw : 0));
    }
    if (t_end > 0)
      std::printf(
          "  daemon cpu %.2f core-seconds over %.2f s wall (%.0f%% of its core), %.2f us "
          "per record\n",
          total_cpu / 1000, static_cast<double>(t_end - t0) / 1e9,
          100.0 * total_cpu / 1000 / (static_cast<double>(t_end - t0) / 1e9),
          total_cpu * 1000 / static_cast<double>(o.records));
    double other = Meter::report(m0, m1);
    std::printf("RESULT throughput_rps=%.0f records=%llu clients=%d count_ok=%d other_load=%.2f\n",
                tp_rate, static_cast<unsigned long long>(o.records), o.clients, count_ok ? 1 : 0,
                other);
    std::fflush(stdout);
  }
  g_clients = nullptr;

  // ---- (b) latency at paced rates
  double worst_file_p99 = 0, worst_seal_p99 = 0;
  for (int ph = 0; ph < nphases; ++ph) {
    uint64_t rate = o.rates[static_cast<size_t>(ph)];
    uint64_t total = static_cast<uint64_t>(o.latency_seconds * static_cast<double>(rate));
    tail.wait_quiet(2 * static_cast<int64_t>(o.seal_interval_ms) + 50, 10000);
    uint64_t failures = 0, late = 0;
    auto m0 = Meter::snap(g_daemon);
    std::thread sender([&] {
      prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
      shaudit_client* c = shaudit_client_open(sock.c_str());
      if (!c) die("client open failed");
      shaudit_client_set_timeout_ms(c, -1);
      int64_t period = 1'000'000'000 / static_cast<int64_t>(rate);
      int64_t t0 = mono_ns() + 1'000'000;
      char line[512];
      for (uint64_t i = 0; i < total; ++i) {
        int64_t target = t0 + static_cast<int64_t>(i) * period;
        int64_t now = mono_ns();
        if (target > now) {
          timespec ts{static_cast<time_t>(target / 1000000000),
                      static_cast<long>(target % 1000000000)};
          while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
          }
        } else if (now - target > period) {
          ++late;
        }
        int len = std::snprintf(line, sizeof line, "lat%d %lld %llu %s", ph,
                                static_cast<long long>(realtime_ns()),
                                static_cast<unsigned long long>(i), o.text.c_str());
        if (shaudit_client_report_line(c, "bench", line, static_cast<size_t>(len)) != 0) ++failures;
      }
      shaudit_client_close(c);
    });
    sender.join();
    auto m1 = Meter::snap(g_daemon);
    bool sealed = tail.wait_sealed(ph, total, 10 * static_cast<int64_t>(o.seal_interval_ms) + 5000);
    LatPhase p = tail.take_phase(ph);
    Pct f = percentiles(p.to_file), s = percentiles(p.to_sealed), dw = percentiles(p.daemon_write),
        ds = percentiles(p.daemon_seal);
    std::printf("latency at %llu records/s for %.1f s (%llu sent, %llu seen, %llu sealed%s%s):\n",
                static_cast<unsigned long long>(rate), o.latency_seconds,
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(f.n),
                static_cast<unsigned long long>(s.n), sealed ? "" : ", TIMED OUT",
                failures ? ", SEND FAILURES" : "");
    if (late)
      std::printf("  note: the sender fell more than one period behind schedule %llu times\n",
                  static_cast<unsigned long long>(late));
    std::printf("  to file  : p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms  (mean %.3f)\n", f.p50,
                f.p99, f.max, f.mean);
    std::printf("  to sealed: p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms  (mean %.3f)\n", s.p50,
                s.p99, s.max, s.mean);
    std::printf(
        "  (writer's time field - send: write p50 %.3f p99 %.3f max %.3f ms; seal p99 %.3f "
        "max %.3f ms)\n",
        dw.p50, dw.p99, dw.max, ds.p99, ds.max);
    double other = Meter::report(m0, m1);
    std::printf(
        "RESULT latency rate=%llu file_p50_ms=%.3f file_p99_ms=%.3f file_max_ms=%.3f "
        "sealed_p50_ms=%.3f sealed_p99_ms=%.3f sealed_max_ms=%.3f n=%zu other_load=%.2f\n",
        static_cast<unsigned long long>(rate), f.p50, f.p99, f.max, s.p50, s.p99, s.max, f.n,
        other);
    std::fflush(stdout);
    if (!sealed || failures || f.n != total) all_ok = false;
    worst_file_p99 = std::max(worst_file_p99, f.p99);
    worst_seal_p99 = std::max(worst_seal_p99, s.p99);
  }

  // Daemon counters, then SIGTERM.
  std::string stats = control_request(ctl, "stats\n");
  if (auto v = shaudit::json::parse(stats.substr(0, stats.find('\n'))); v && v->is_object()) {
    const auto& ob = v->as_object();
    auto num = [&](const char* k) {
      auto p = shaudit::json::get_int(ob, k);
      return p ? static_cast<long long>(*p) : -1LL;
    };
    std::printf(
        "daemon stats: accepted %lld, rejected %lld, loss_records %lld, records_written "
        "%lld, seals %lld, queue_high_water %lld/%lld, write_errors %lld\n",
        num("accepted"), num("rejected"), num("loss_records"), num("records_written"), num("seals"),
        num("queue_high_water"), num("queue_capacity"), num("write_errors"));
    if (num("rejected") != 0 || num("loss_records") != 0) all_ok = false;
  }
  kill(g_daemon, SIGTERM);
  int st = wait_for(g_daemon, 60000);
  if (st < 0) {
    kill(g_daemon, SIGKILL);
    waitpid(g_daemon, &st, 0);
    std::printf("shauditd did not stop within 60 s of SIGTERM (killed)\n");
    all_ok = false;
  } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    std::printf("shauditd exited with status %d (see %s)\n", st, derr.c_str());
    all_ok = false;
  }
  g_daemon = -1;
  tail.stop();
  uint64_t log_lines = tail.lines();
  struct stat lst {};
  ::stat(log.c_str(), &lst);
  std::printf(
      "log: %llu records (%llu seals, %llu of them certifying a next epoch key), %.1f MB\n",
      static_cast<unsigned long long>(log_lines), static_cast<unsigned long long>(tail.seals()),
      static_cast<unsigned long long>(tail.epoch_seals()), static_cast<double>(lst.st_size) / 1e6);
  std::printf(
      "RESULT log records=%llu seals=%llu epoch_seals=%llu bytes=%lld\n",
      static_cast<unsigned long long>(log_lines), static_cast<unsigned long long>(tail.seals()),
      static_cast<unsigned long long>(tail.epoch_seals()), static_cast<long long>(lst.st_size));

  // ---- (c) verify
  std::string vout = dir + "/verify.out";
  auto vm0 = Meter::snap(-1);
  int64_t v0 = mono_ns();
  pid_t vp = spawn({o.shaudit_cli, "verify", log, "--pubkey", pub}, -1, vout, vout);
  rusage ru{};
  int vst = wait_for(vp, 600000, &ru);
  double vsecs = static_cast<double>(mono_ns() - v0) / 1e9;
  auto vm1 = Meter::snap(-1);
  if (vst < 0) {
    kill(vp, SIGKILL);
    waitpid(vp, &vst, 0);
  }
  std::string vtext;
  {
    std::ifstream in(vout);
    std::getline(in, vtext);
  }
  bool vok = vst >= 0 && WIFEXITED(vst) && WEXITSTATUS(vst) == 0;
  double vcpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  std::printf(
      "verify: %.3f s wall (%.3f s cpu, max RSS %ld MB) for %llu records = %.0f records/s: %s\n",
      vsecs, vcpu, ru.ru_maxrss / 1024, static_cast<unsigned long long>(log_lines),
      static_cast<double>(log_lines) / vsecs, vtext.c_str());
  double vother = Meter::report(vm0, vm1);
  std::printf("RESULT verify_s=%.3f records=%llu ok=%d other_load=%.2f\n", vsecs,
              static_cast<unsigned long long>(log_lines), vok ? 1 : 0, vother);
  if (!vok) all_ok = false;

  // ---- summary against the targets
  std::printf("\ntargets:\n");
  if (o.records > 0)
    std::printf("  throughput >= 100000 records/s     : %.0f  %s\n", tp_rate,
                verdict(tp_rate >= 100000));
  if (nphases > 0) {
    std::printf("  p99 to file < 2 ms                 : %.3f ms  %s\n", worst_file_p99,
                verdict(worst_file_p99 < 2.0));
    double lim = static_cast<double>(o.seal_interval_ms) + 5;
    std::printf("  p99 to sealed < %.0f ms (interval+5): %.3f ms  %s\n", lim, worst_seal_p99,
                verdict(worst_seal_p99 < lim));
  }
  double per_million = log_lines ? vsecs * 1e6 / static_cast<double>(log_lines) : 0;
  std::printf(
      "  verify < 10 s per 1M records       : %.3f s for %.2fM records (%.3f s per 1M)  %s\n",
      vsecs, static_cast<double>(log_lines) / 1e6, per_million, verdict(vok && per_million < 10.0));
  std::printf("  run integrity (counts, no loss, clean stop, verify OK): %s\n",
              all_ok ? "OK" : "PROBLEMS (see above)");

  if (!o.keep)
    fs::remove_all(dir);
  else
    std::printf("kept %s\n", dir.c_str());
  return all_ok ? 0 : 1;
}
