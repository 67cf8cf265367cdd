// SPDX-License-Identifier: Apache-2.0
#include "receiver.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "shaudit/record.h"
#include "sockets.h"

namespace shaudit::daemon {
namespace {

// The connecting process's credentials, fixed at connect() (for per-uid bounds only: each
// message carries its own).
ucred peer_of(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) peer = ucred{0, 0, 0};
  return peer;
}

constexpr int kMessagesPerTurn = 64;          // fairness: one busy client cannot starve others
constexpr size_t kBytesPerTurn = 512 * 1024;  // ... nor with a few big messages
constexpr int kDrainMessages = 100000;        // read at stop: reports already sent are kept

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

Receiver::Receiver(const Config& cfg, Stats& stats, SessionRegistry& sessions, RecordQueue& q,
                   bpf::Collector* collector)
    : cfg_(cfg),
      stats_(stats),
      q_(q),
      handler_(
          q, stats, sessions, [this](int fd) { watch_pidfd(fd); },
          [this](int fd) {
            ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
            pidfds_.erase(fd);
          }),
      containers_(cfg.container_state_dirs),
      container_sockets_(cfg.container_state_dirs,
                         // the name interposers inside use by default
                         std::filesystem::path(SHAUDIT_DEFAULT_SOCKET).filename().string()),
      collector_(collector) {
  buf_ = new char[SHAUDIT_WIRE_MAX_MESSAGE];
  handler_.set_containers(&containers_);
  if (!cfg.interposer.empty()) {
    // The interposer's bytes, and its musl build's beside it (a copy in an image may be either).
    std::string dir = cfg.interposer.substr(0, cfg.interposer.rfind('/') + 1);
    for (const std::string& f : {cfg.interposer, dir + "libshaudit_preload_musl.so"}) {
      std::ifstream in(f, std::ios::binary);
      std::string bytes(std::istreambuf_iterator<char>(in), {});
      if (!bytes.empty()) genuine_interposers_.push_back(std::move(bytes));
    }
  }
  // Patterns were checked when the configuration was loaded.
  if (auto r = Redactor::make(cfg.redact_patterns)) redactor_ = std::move(*r);
  handler_.set_redactor(&redactor_);
  if (collector_) {
    CrossCheckOptions o;
    o.redactor = &redactor_;
    o.window_ns = static_cast<int64_t>(cfg.crosscheck_window_ms) * 1000000;
    loss_check_every_ns_ = std::min<int64_t>(100000000, o.window_ns / 2);
    o.allowlist = cfg.unhooked_allowlist;
    o.user_of = [this](uid_t uid) { return handler_.user_name(uid); };
    o.protected_path = [this](uint64_t dev, uint64_t ino) {
      return collector_->protected_path(dev, ino);
    };
    cc_ = std::make_unique<CrossCheck>(q, stats, std::move(o), [this](pid_t pid, pid_t ppid) {
      return handler_.command_of(pid, ppid);
    });
    handler_.set_kernel_side(cc_.get(), [this](pid_t pid, const std::string& session) {
      (void)collector_->track(pid, CrossCheck::key_of(session));
      cc_->on_track(pid, collector_->interposer_initialised(pid));
    });
    // (Everything the kernel said so far, past this turn's horizon too: the shell asking is
    // newer than its own exec.)
    handler_.set_kernel_catch_up([this] {
      collector_->consume();
      cc_->release(/*all=*/true);
    });
  }
}

void Receiver::on_kernel_event(const void* data, size_t size) {
  stats_.bpf_events.fetch_add(1, std::memory_order_relaxed);
  sa_event_hdr h;
  if (!cc_ || size < sizeof h) return;
  std::memcpy(&h, data, sizeof h);
  if (h.type == SA_EV_EXEC && !(h.flags & SA_FLAG_KNOWN_FILE) &&
      size >= offsetof(sa_exec_event, argv)) {
    // A bash under any name or path gets its readline() probed as soon as a session runs it
    // (a file examined before is flagged by the kernel side: no stat for it).
    const auto* e = static_cast<const sa_exec_event*>(data);
    collector_->probe_if_bash(std::string(e->filename, strnlen(e->filename, sizeof e->filename)));
  }
  if (h.type == SA_EV_EXEC && (h.flags & SA_FLAG_RUNTIME_EXEC) &&
      size >= offsetof(sa_exec_event, argv)) {
    // A process a container runtime started in a container: its session opens before the
    // records of what it runs.
    const auto* e = static_cast<const sa_exec_event*>(data);
    ReportHandler::RuntimeExec x;
    x.pid = static_cast<pid_t>(h.pid);
    x.ppid = static_cast<pid_t>(h.ppid);
    x.vpid = static_cast<pid_t>(e->ns_pid);
    x.uid = h.uid;
    x.key = h.key;
    x.pidns_ino = e->pidns_ino;
    x.exe.assign(e->filename, strnlen(e->filename, sizeof e->filename));
    x.tty.assign(e->tty, strnlen(e->tty, sizeof e->tty));
    x.argv = CrossCheck::exec_argv(e, size);
    bool stop = false;
    if (!handler_.open_runtime_session(x, stop)) {
      // In none of our containers: not followed, and what it already started is dropped.
      collector_->untrack(x.pid, x.key);
      cc_->ignore_key(x.key);
      return;
    }
    if (stop) stopping_ = true;
  }
  cc_->on_kernel(data, size);
}

// Kernel events lost to a full ring buffer: said in the log, never silent; and the cross-check
// takes no decision that needs the lost events.
void Receiver::check_kernel_loss(int64_t now) {
  collector_->refresh_protected();  // the log's file after a rotation (no-op without protect)
  uint64_t dropped = collector_->dropped();
  if (dropped > dropped_seen_) {
    json::Object loss;
    loss["type"] = record::kLoss;
    loss["cause"] = "bpf_ringbuf";
    loss["missing"] = static_cast<int64_t>(dropped - dropped_seen_);
    stats_.bpf_dropped.store(dropped, std::memory_order_relaxed);
    stats_.loss_records.fetch_add(1, std::memory_order_relaxed);
    dropped_seen_ = dropped;
    // Lost since the last look (and a tick's worth before it: scheduling slack).
    cc_->on_kernel_loss(loss_checked_ns_ - 200000000, now);
    if (!q_.push(std::move(loss))) stopping_ = true;
  }
  loss_checked_ns_ = now;
}

void Receiver::kernel_tick(bool timer, int64_t turn_ns) {
  int got = collector_->consume();
  // fail: closed: this thread consumes the kernel's events and hands records to the writer
  // (blocking when the writer's queue is full): while it runs this, shauditd keeps up.
  collector_->heartbeat();
  int64_t now = record::now_ns();
  // The drop counter is a system call to read: ten looks a second, or two per window when the
  // window is shorter (a loss is known before any decision about the time it covers).
  if (now - loss_checked_ns_ >= loss_check_every_ns_) check_kernel_loss(now);
  // Decisions are taken only for times the drop counter was read after: an event dropped
  // before a decision's window closed is then always known as a loss (a busy shauditd whose
  // timer lags would otherwise decide on a view it does not know is incomplete).
  // And only for times whose reports this turn has read (turn_ns).
  // A session whose entry had exited when its exec was read ends this turn: everything the
  // kernel said of it is taken first, past the turn's horizon too (its exit came before this).
  if (handler_.sessions_gone()) cc_->release(/*all=*/true);
  if (!cc_->tick(std::min({now, loss_checked_ns_, turn_ns}))) stopping_ = true;
  if (!handler_.end_gone_sessions()) stopping_ = true;
  // The timer runs every 20 ms while the kernel has something to say or decisions wait, and
  // every 200 ms once nothing did for a second: an idle shauditd wakes 5 times a second, not 50.
  // (A first exec of an unexamined file, and every report, wake it at once anyway.)
  bool busy = got > 0 || !cc_->idle();
  if (busy)
    idle_ticks_ = 0;
  else if (timer && idle_ticks_ < 1000)
    ++idle_ticks_;
  long period = idle_ticks_ >= 50 ? 200000000 : 20000000;
  if (period != timer_period_) {
    timer_period_ = period;
    itimerspec it{{0, period}, {0, period}};
    ::timerfd_settime(timer_fd_, 0, &it, nullptr);
  }
}

Receiver::~Receiver() {
  for (auto& [fd, _] : clients_) ::close(fd);
  for (int fd : {epfd_, listen_fd_, wake_fd_, reserve_fd_, timer_fd_, scan_fd_})
    if (fd >= 0) ::close(fd);
  delete[] buf_;
}

Result<void> Receiver::refuse_if_running() const {
  for (auto [path, type] :
       {std::pair{cfg_.socket, SOCK_SEQPACKET}, std::pair{cfg_.control_socket, SOCK_STREAM}})
    if (socket_is_live(path, type))
      return make_error(fmt::format("another shauditd is listening on {}", path));
  return {};
}

Result<void> Receiver::listen() {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ < 0 || wake_fd_ < 0)
    return make_error(fmt::format("epoll/eventfd: {}", std::strerror(errno)));
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // <socket dir>/kernel tells interposers that execs are recorded from the kernel (they then
  // send no exec reports); it exists only while an eBPF collector runs behind this socket.
  kernel_flag_ = socket_dir(cfg_.socket) + "/kernel";
  ::unlink(kernel_flag_.c_str());
  if (collector_) {
    if (auto r = make_parent_dirs(cfg_.socket, 0755); !r) return r.error();
    int f =
        ::open(kernel_flag_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (f < 0)
      return make_error(fmt::format("cannot create {}: {}", kernel_flag_, std::strerror(errno)));
    ::fchmod(f, 0644);
    ::close(f);
  }
  auto s = make_socket(cfg_.socket, SOCK_SEQPACKET, cfg_.socket_mode, cfg_.socket_group);
  if (!s) return s.error();
  listen_fd_ = *s;
  bound_socket_ = true;
  if (collector_) {
    // Kernel events do not wake shauditd one by one (bpf/proc.bpf.c, wake_flags): they are
    // taken at every wake-up by a reporter and at least every 20 ms; decisions likewise.
    timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec it{{0, 20000000}, {0, 20000000}};
    ::timerfd_settime(timer_fd_, 0, &it, nullptr);
    bpf_fd_ = collector_->epoll_fd();
    loss_checked_ns_ = record::now_ns();
  }
  if (!cfg_.container_state_dirs.empty()) {
    scan_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    itimerspec it{{1, 0}, {0, 1000000}};  // at once, then every second
    ::timerfd_settime(scan_fd_, 0, &it, nullptr);
  }
  for (int fd : {listen_fd_, wake_fd_, timer_fd_, bpf_fd_, scan_fd_}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return {};
}

void Receiver::watch_pidfd(int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) pidfds_.insert(fd);
}

void Receiver::remove_sockets() {
  if (bound_socket_) ::unlink(cfg_.socket.c_str());
  if (!kernel_flag_.empty()) ::unlink(kernel_flag_.c_str());
  bound_socket_ = false;
}

void Receiver::stop() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

void Receiver::run() {
  std::vector<epoll_event> events(256);
  int64_t last_wake = 0;
  const int64_t batch_ns = static_cast<int64_t>(cfg_.receiver_batch_us) * 1000;
  while (!stopping_) {
    int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()),
                         !paused_.empty()   ? 5
                         : refused_.empty() ? -1
                                            : 1000);
    if (n > 0 && batch_ns > 0) {
      // Under a stream of short-lived reporters (an exec loop: connect, hello, exit), waking
      // for every event wakes this thread onto the busy CPU of the reporter. When the last
      // wake was recent, gather for a moment and take the events together.
      int64_t now = monotonic_ns();
      if (now - last_wake < 2 * batch_ns) {
        timespec ts{0, static_cast<long>(batch_ns)};
        ::nanosleep(&ts, nullptr);
        n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 0);
      }
      last_wake = now;
    }
    // Everything sent before this moment is in a descriptor this turn reads (or a connection
    // it accepts and reads): the cross-check decides for times up to here only.
    const int64_t turn_ns = record::now_ns();
    // Kernel events later than this wait for the next turn, whose reports are read first.
    if (cc_) cc_->set_horizon(turn_ns);
    if (n < 0) {
      if (errno == EINTR) continue;
      stats_.set_error(fmt::format("epoll_wait: {}", std::strerror(errno)));
      break;
    }
    // Records of this turn go to the writer together (commit below).
    q_.begin_staging();
    // Reports first, then the kernel: a typed line was sent before the shell forked its
    // command, so when the kernel's exec of that command is read the line is known, and names
    // it (CrossCheck::flush_fresh).
    bool kernel_turn = false;
    for (int i = 0; i < n && !stopping_; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        stopping_ = true;
      } else if (fd == listen_fd_ || container_sockets_.is_listener(fd)) {
        accept_clients(fd);
      } else if (fd == scan_fd_) {
        uint64_t expirations;
        ssize_t r = ::read(scan_fd_, &expirations, sizeof expirations);
        (void)r;
        scan_containers();
      } else if (fd == bpf_fd_) {
        kernel_turn = true;
      } else if (fd == timer_fd_) {
        uint64_t expirations;
        ssize_t r = ::read(timer_fd_, &expirations, sizeof expirations);
        (void)r;
        kernel_turn = true;
      } else if (pidfds_.count(fd)) {
        // A session's entry process exited: its session ends (and its pidfd is closed), after
        // the records of what the kernel saw it and its children run.
        if (collector_) {
          collector_->consume();
          if (!cc_->flush_fresh()) stopping_ = true;
        }
        if (!handler_.entry_exited(fd)) stopping_ = true;
      } else if (over_share(fd)) {
        // This reporter's uid already has its share of the queue waiting (records or bytes):
        // read others first, so one flooding user cannot push another user's records far
        // back. Out of the epoll set, not just masked: a hang-up is reported whatever the
        // mask (a busy loop).
        ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        paused_.insert(fd);
        stats_.client_pauses.fetch_add(1, std::memory_order_relaxed);
      } else {
        read_client(fd, kMessagesPerTurn);
      }
    }
    if (collector_ && (kernel_turn || n > 0)) kernel_tick(kernel_turn, turn_ns);
    if (!refused_.empty()) flush_refusals(record::now_ns());
    if (!q_.commit()) stopping_ = true;
    for (auto it = paused_.begin(); it != paused_.end();) {
      if (over_share(*it, /*half=*/true)) {
        ++it;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = *it;
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, *it, &ev);
      it = paused_.erase(it);
    }
  }
  if (!refused_.empty()) flush_refusals(INT64_MAX);
  // Reports already sent when the stop came are read and recorded, not dropped.
  std::vector<int> fds;
  for (auto& [fd, _] : clients_) fds.push_back(fd);
  stopping_ = false;
  for (size_t i = 0; i < fds.size() && !stopping_; ++i)  // stopping_: the queue closed
    read_client(fds[i], kDrainMessages);
  // Everything the kernel already said is decided now rather than dropped.
  if (collector_) {
    collector_->consume();
    check_kernel_loss(record::now_ns());
    (void)cc_->flush();
  }
}

// Whether the uid of this connection has its share of the queue waiting (records or bytes);
// with half: more than half of it (a paused reporter is read again at half).
bool Receiver::over_share(int fd, bool half) {
  auto c = clients_.find(fd);
  if (c == clients_.end()) return false;
  uid_t uid = c->second.uid;
  auto over = [half](size_t waiting, uint64_t share) {
    return share > 0 && (half ? waiting * 2 > share : waiting >= share);
  };
  return over(q_.lane_depth(uid), cfg_.client_queue_quota) ||
         over(q_.lane_bytes(uid), cfg_.client_queue_bytes);
}

// A connection shauditd does not take: closed at once, and said in a signed loss record
// naming the uid (one record a second per uid, with the count), so what that process would
// have reported is known to be missing; the cross-check does not mistake it for a bypass.
void Receiver::refuse(int fd, const ucred& peer, const char* reason) {
  ::close(fd);
  stats_.connections_refused.fetch_add(1, std::memory_order_relaxed);
  Refused& r = refused_[peer.uid];
  if (r.count++ == 0) {
    r.first_pid = peer.pid;
    r.reason = reason;
  }
}

void Receiver::flush_refusals(int64_t now) {
  if (now - refusals_flushed_ns_ < 1000000000) return;
  refusals_flushed_ns_ = now;
  for (const auto& [uid, r] : refused_) {
    json::Object loss;
    loss["type"] = record::kLoss;
    loss["cause"] = "connection_refused";
    loss["uid"] = static_cast<int64_t>(uid);
    loss["refused"] = static_cast<int64_t>(r.count);
    loss["pid"] = static_cast<int64_t>(r.first_pid);
    loss["reason"] = r.reason;
    loss["evidence"] =
        fmt::format("{} connection(s) of uid {} refused ({}): what those processes report is lost",
                    r.count, uid, r.reason);
    stats_.loss_records.fetch_add(1, std::memory_order_relaxed);
    if (!q_.push(std::move(loss))) {
      stopping_ = true;
      break;
    }
  }
  refused_.clear();
}

void Receiver::scan_containers() {
  container_sockets_.scan(
      [this](int fd, const RunningContainer& f) {
        // The image's own copy of the interposer counts as genuine when its bytes are.
        if (collector_) {
          for (const auto& genuine : genuine_interposers_) {
            if (auto id = ContainerSockets::interposer_copy(f.pid, genuine)) {
              collector_->allow_interposer(id->first, id->second);
              break;
            }
          }
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      },
      [this](const json::Object& container, const std::string& reason) {
        // Its interposer (if the image carries one) has nowhere to report: said, signed.
        json::Object r;
        r["type"] = "container_unreachable";
        r["container"] = container;
        r["reason"] = reason;
        r["evidence"] = fmt::format(
            "shauditd cannot put its socket into container {} ({}): typed lines there are not "
            "reported; the kernel's exec events of its audited sessions still are",
            json::get_string(container, "id") ? *json::get_string(container, "id") : "?", reason);
        if (!q_.push(std::move(r))) stopping_ = true;
      },
      [this](int fd) { ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); },
      [this](const RunningContainer& f) {
        // A container none of whose processes can report (no interposer in it): said once,
        // signed, with why, so an auditor can tell a quiet container from a blind one.
        std::string reason;
        auto interposer = json::get_string(f.container, "interposer");
        if (f.prepared) {
          if (!interposer || *interposer != "none") return;
          reason = "shaudit-oci-runtime left it without an interposer" +
                   (f.reason_annotation.empty() ? std::string() : ": " + f.reason_annotation);
        } else {
          if (genuine_interposers_.empty()) return;  // nothing to tell a genuine copy by
          for (const auto& genuine : genuine_interposers_)
            if (ContainerSockets::interposer_copy(f.pid, genuine)) return;
          reason = f.audit_annotation == "false"
                       ? "opted out (annotation shaudit.io/audit: \"false\")"
                       : "its image carries no shaudit interposer and shaudit-oci-runtime did not "
                         "prepare it";
        }
        json::Object r;
        r["type"] = "container_unaudited";
        r["container"] = f.container;
        r["reason"] = reason;
        r["evidence"] = fmt::format(
            "lines typed in container {} are not reported; with eBPF on, what its runtime "
            "starts there is still a session, and its execs are the kernel's records",
            f.id);
        if (!q_.push(std::move(r))) stopping_ = true;
      });
}

void Receiver::accept_clients(int listen_fd) {
  while (true) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // Out of descriptors: the pending connection would keep the listening socket
        // readable forever (a busy loop). Take it off the backlog with the reserve
        // descriptor and close it: refused, and counted once.
        ::close(reserve_fd_);
        int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) refuse(c, peer_of(c), "descriptors");
        reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (c >= 0) continue;
      }
      return;
    }
    ucred peer = peer_of(fd);
    if (clients_.size() >= cfg_.max_clients) {
      refuse(fd, peer, "max_clients");
      continue;
    }
    // One user cannot take every connection: past its share, its own connections are
    // refused (and said so), never another user's.
    if (peer.uid != 0 && per_uid_[peer.uid] >= cfg_.max_clients_per_uid) {
      refuse(fd, peer, "max_clients_per_uid");
      continue;
    }
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    // The kernel stamps each report when it is sent: its time is the kernel's, not the
    // sender's claim, and not how late shauditd got to read it.
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    // What it sent before this point carries no send time (the flag is the receiving
    // socket's, not inherited from the listener): those bytes are counted, and their reports
    // are known to be sent at or before their receipt only.
    int unstamped = 0;
    if (::ioctl(fd, SIOCINQ, &unstamped) != 0 || unstamped < 0) unstamped = 0;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    clients_[fd] = Client{peer.uid, static_cast<size_t>(unstamped)};
    ++per_uid_[peer.uid];
    stats_.connections_total.fetch_add(1, std::memory_order_relaxed);
    stats_.connections_open.store(clients_.size(), std::memory_order_relaxed);
    // What it sent while waiting to be accepted is read now, in this turn, before its
    // decisions: a loaded shauditd that accepts late must not decide that a program said no
    // hello, or reported no line, when the report sat in this connection's queue.
    read_client(fd, kMessagesPerTurn);
  }
}

void Receiver::close_client(int fd) {
  paused_.erase(fd);
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  if (auto it = clients_.find(fd); it != clients_.end()) {
    auto u = per_uid_.find(it->second.uid);
    if (u != per_uid_.end() && --u->second == 0) per_uid_.erase(u);
    clients_.erase(it);
  }
  stats_.connections_open.store(clients_.size(), std::memory_order_relaxed);
}

// Reads up to max_messages from one client; false when it is closed.
bool Receiver::read_client(int fd, int max_messages) {
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int)) +
                             CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(int) * 32)];
  size_t taken = 0;
  for (int k = 0; k < max_messages && (max_messages > kMessagesPerTurn || taken < kBytesPerTurn);
       ++k) {
    iovec iov{buf_, SHAUDIT_WIRE_MAX_MESSAGE};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = ::recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        close_client(fd);
        return false;
      }
      return true;
    }
    // End of stream carries no control data; a zero-length message still carries the
    // sender's credentials and is rejected (as short) below instead of ending the connection.
    if (n == 0 && mh.msg_controllen == 0) {  // peer closed
      close_client(fd);
      return false;
    }
    int64_t recv_ns = record::now_ns();  // shauditd's clock, never the sender's
    taken += static_cast<size_t>(n);
    bool receipt_time = false;
    if (auto cl = clients_.find(fd); cl != clients_.end() && cl->second.unstamped > 0) {
      receipt_time = true;
      cl->second.unstamped -= std::min(cl->second.unstamped, static_cast<size_t>(n));
    }
    const ucred* cred = nullptr;
    bool fds = false;
    uint64_t ino = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        cred = reinterpret_cast<const ucred*>(CMSG_DATA(c));
      } else if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(timespec))) {
        // When the kernel queued it (realtime): the report's time for the cross-check.
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        int64_t sent = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
        if (sent > 0 && sent <= recv_ns) recv_ns = sent;
      } else if (c->cmsg_type == kScmPidfd && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        // The sender's pidfd, attached by the kernel: its inode identifies the process.
        int pidfd;
        std::memcpy(&pidfd, CMSG_DATA(c), sizeof pidfd);
        struct stat st;
        if (pidfd >= 0 && ::fstat(pidfd, &st) == 0) ino = st.st_ino;
        if (pidfd >= 0) ::close(pidfd);
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // Never keep descriptors a reporter tries to hand us.
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int passed;
          std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
          ::close(passed);
        }
        fds = true;
      }
    }
    if (fds || (mh.msg_flags & MSG_CTRUNC)) {
      stats_.rejected[kFdPassed].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (mh.msg_flags & MSG_TRUNC) {
      stats_.rejected[static_cast<size_t>(wire::Reject::kOversize)].fetch_add(1);
      continue;
    }
    if (!cred || cred->pid <= 0) {
      stats_.rejected[kNoCredentials].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    wire::Message m;
    wire::DecodeError err;
    if (!wire::decode(std::string_view(buf_, static_cast<size_t>(n)), m, err)) {
      stats_.rejected[static_cast<size_t>(err.reason)].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::string reply;
    // Records of this message count against its uid's share of the queue, by its size.
    RecordQueue::set_lane(cred->uid, static_cast<size_t>(n));
    bool ok = handler_.handle(m, ReportHandler::Sender{*cred, ino, recv_ns, receipt_time}, reply);
    RecordQueue::set_lane(-1);
    if (!ok) {
      stopping_ = true;
      return false;
    }
    if (!reply.empty()) {
      ssize_t w = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)w;  // a peer that does not read its answer only loses the answer
    }
  }
  return true;
}

}  // namespace shaudit::daemon
