// SPDX-License-Identifier: Apache-2.0
// syslog output: one RFC 5424 message per record (outfmt::syslog5424: the record's log line is
// the MSG, its id, type, seq, session, user, uid and rule are SD-PARAMs of [shaudit@32473]).
//
// Transports:
//   tcp  RFC 6587 octet counting ("LEN SP MSG"), so a record whose text has a newline stays one
//        message. One connection is kept open across deliveries; a batch goes out in one
//        buffer (as few send() calls as the kernel allows).
//   tls  the same framing inside TLS (RFC 5425) through OpenSSL: TLS 1.2 or later, SNI, the
//        chain verified against ca_file (or the system store) and the name against
//        server_name (default: the HOST of address; an IP literal is checked against the
//        certificate's IP addresses) unless tls_verify is false; a client certificate when
//        cert_file (and key_file; without it the key is read from cert_file) is given.
//   udp  RFC 5426: one datagram per message, no framing, the batch in one sendmmsg().
//        A message longer than kUdpMaxMessage (65,000 bytes; an IPv4 UDP payload holds at most
//        65,507) is cut there, at a UTF-8 character boundary, and sent anyway: the header (with
//        the record id and seq) still reaches the collector, which can find the whole record
//        in the signed log, and refusing would send nothing at all. The JSON of such a MSG is
//        incomplete. Collectors often cut far earlier (rsyslog: 8 KiB unless
//        $MaxMessageSize is raised), so prefer tcp or tls for long records.
//
// Acknowledgement: syslog has none. A batch counts as delivered once the kernel (or OpenSSL)
// took all its bytes. Before each batch a kept connection is checked for a close or reset
// from the collector, and any failure while sending (connect, handshake, a broken connection
// mid-batch, a timeout) makes the whole batch be retried on a fresh connection: records may
// arrive twice (the id SD-PARAM tells duplicates apart), and bytes in flight when a collector
// dies after taking them from the socket are lost (use RELP-capable collectors' own spooling
// if that matters). UDP reports a collector that is down only through ICMP errors on a later
// send (then the batch is retried); otherwise datagrams may be lost silently.
//
// Timeouts: resolving uses getaddrinfo (blocking, the resolver's own timeouts); connect and
// the TLS handshake together take at most timeout_ms; while sending, each wait for the socket
// to accept more bytes is bounded by timeout_ms.
//
// SIGPIPE: plain sockets are written with send(MSG_NOSIGNAL), and TLS goes through a BIO of
// our own that does the same, so a collector that closes never raises SIGPIPE (shauditd also
// ignores it in main()).
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "out_sinks.h"
#include "outputs_format.h"

namespace shaudit::daemon {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kUdpMaxMessage = 65000;
constexpr unsigned kMmsgChunk = 256;       // datagrams per sendmmsg() call
constexpr int64_t kTls13ConfirmMs = 1000;  // see confirm_tls13()

enum class Proto { kTcp, kUdp, kTls };

// "HOST:PORT", "[V6]:PORT" or "V6:PORT" (the last colon separates the port).
bool split_address(const std::string& address, std::string& host, std::string& port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return !host.empty();
}

int ms_until(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Waits for events on fd until deadline: 1 ready, 0 timed out, -1 poll failed (errno).
int wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms_until(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    return r == 0 ? 0 : 1;
  }
}

// The most specific thing OpenSSL (or errno) said about a failed call; clears the queue.
std::string ssl_error(SSL* ssl, int ret, int saved_errno) {
  unsigned long e = ERR_peek_last_error();
  std::string why;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    why = buf;
  } else if (ssl && SSL_get_error(ssl, ret) == SSL_ERROR_ZERO_RETURN) {
    why = "the collector closed the TLS session";
  } else if (saved_errno != 0) {
    why = std::strerror(saved_errno);
  } else {
    why = "the collector closed the connection";
  }
  ERR_clear_error();
  return why;
}

// A BIO over a non-blocking socket that sends with MSG_NOSIGNAL (OpenSSL's socket BIO uses
// write(), which raises SIGPIPE on a connection the peer closed).
int bio_write(BIO* b, const char* data, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(fd, data, static_cast<size_t>(len), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* nosignal_bio_method() {
  static std::once_flag once;
  static BIO_METHOD* m = nullptr;
  std::call_once(once, [] {
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shaudit nosignal socket");
    if (!m) return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
  });
  return m;
}

// The TLS client context: protocol floor, trust anchors, client certificate.
Result<SSL_CTX*> make_tls_ctx(const OutputConfig& cfg) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return make_error("SSL_CTX_new: " + ssl_error(nullptr, 0, 0));
  auto fail = [&](std::string what) -> Result<SSL_CTX*> {
    std::string why = what + ": " + ssl_error(nullptr, 0, 0);
    SSL_CTX_free(ctx);
    return make_error(std::move(why));
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
    return fail("cannot require TLS 1.2");
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (cfg.tls_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!cfg.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1)
        return fail(fmt::format("cannot load ca_file {}", cfg.ca_file));
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return fail("cannot load the system's trusted certificates");
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!cfg.key_file.empty() && cfg.cert_file.empty()) {
    SSL_CTX_free(ctx);
    return make_error("key_file needs cert_file");
  }
  if (!cfg.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1)
      return fail(fmt::format("cannot load cert_file {}", cfg.cert_file));
    const std::string& key = cfg.key_file.empty() ? cfg.cert_file : cfg.key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
      return fail(fmt::format("cannot load the client key from {}", key));
    if (SSL_CTX_check_private_key(ctx) != 1)
      return fail(fmt::format("{} does not match {}", key, cfg.cert_file));
  }
  return ctx;
}

class SyslogSink : public Sink {
 public:
  SyslogSink(OutputConfig cfg, SinkContext sctx, Proto proto, std::string host, std::string port,
             SSL_CTX* tls)
      : cfg_(std::move(cfg)),
        sctx_(std::move(sctx)),
        proto_(proto),
        host_(std::move(host)),
        port_(std::move(port)),
        tls_(tls) {
    what_ = fmt::format("syslog {} {}", cfg_.protocol, cfg_.address);
    server_name_ = cfg_.server_name.empty() ? host_ : cfg_.server_name;
  }
  ~SyslogSink() override {
    disconnect();
    if (tls_) SSL_CTX_free(tls_);
  }

  Delivery deliver(const std::vector<OutItem>& batch) override {
    if (batch.empty()) return Delivery::ok();
    std::vector<std::string> msgs;
    msgs.reserve(batch.size());
    for (const auto& it : batch)
      msgs.push_back(
          outfmt::syslog5424(*it.rec, it.line, sctx_.hostname, cfg_.app_name, cfg_.facility));
    Delivery d = proto_ == Proto::kUdp ? send_datagrams(msgs) : send_stream(msgs);
    if (d.kind != Delivery::Kind::kOk) disconnect();
    ERR_clear_error();
    return d;
  }

 private:
  // ---- connection ------------------------------------------------------------------------

  void disconnect() {
    if (ssl_) {
      if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);  // best effort: one close_notify
      SSL_free(ssl_);
      ERR_clear_error();
      ssl_ = nullptr;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Resolves the address and connects a non-blocking socket to the first address that takes
  // it, within deadline (a datagram socket "connects" at once). "" or why not.
  std::string connect_socket(Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = proto_ == Proto::kUdp ? SOCK_DGRAM : SOCK_STREAM;
    addrinfo* res = nullptr;
    int g = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res);
    if (g != 0)
      return fmt::format("cannot resolve {}: {}", host_,
                         g == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(g));
    std::string why = "no address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      char ip[INET6_ADDRSTRLEN] = "?";
      const void* a =
          ai->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
      inet_ntop(ai->ai_family, a, ip, sizeof ip);
      int fd =
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) {
        why = fmt::format("socket: {}", std::strerror(errno));
        continue;
      }
      int err = 0;
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
          int w = wait_fd(fd, POLLOUT, deadline);
          socklen_t len = sizeof err;
          if (w == 0)
            err = ETIMEDOUT;
          else if (w < 0)
            err = errno;
          else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        }
      }
      if (err != 0) {
        why = fmt::format("connect to {}: {}", ip,
                          err == ETIMEDOUT && Clock::now() >= deadline
                              ? fmt::format("timed out after {} ms", cfg_.timeout_ms)
                              : std::string(std::strerror(err)));
        ::close(fd);
        if (Clock::now() >= deadline) break;
        continue;
      }
      if (proto_ != Proto::kUdp) {
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);  // notice a vanished peer
      }
      fd_ = fd;
      ::freeaddrinfo(res);
      return {};
    }
    ::freeaddrinfo(res);
    return why;
  }

  // The TLS handshake on fd_, within deadline. "" or why not.
  std::string handshake(Clock::time_point deadline) {
    ERR_clear_error();
    // A fresh context per connection, so renewed CA, certificate and key files are used
    // without a restart (the first connection uses the one checked at start).
    if (!tls_) {
      auto c = make_tls_ctx(cfg_);
      if (!c) return c.message();
      tls_ = *c;
    }
    const BIO_METHOD* m = nosignal_bio_method();
    ssl_ = SSL_new(tls_);
    SSL_CTX_free(tls_);  // ssl_ holds its own reference
    tls_ = nullptr;
    if (!m || !ssl_) return "SSL_new: " + ssl_error(nullptr, 0, 0);
    BIO* bio = BIO_new(m);
    if (!bio) return "BIO_new: " + ssl_error(nullptr, 0, 0);
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd_)));
    SSL_set_bio(ssl_, bio, bio);
    bool ip = is_ip_literal(server_name_);
    if (!ip && SSL_set_tlsext_host_name(ssl_, server_name_.c_str()) != 1)  // SNI takes no IP
      return "cannot set the server name: " + ssl_error(nullptr, 0, 0);
    if (cfg_.tls_verify) {
      int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name_.c_str())
                  : SSL_set1_host(ssl_, server_name_.c_str());
      if (ok != 1)
        return fmt::format("cannot verify against name '{}': {}", server_name_,
                           ssl_error(nullptr, 0, 0));
      SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    for (;;) {
      errno = 0;
      int r = SSL_connect(ssl_);
      if (r == 1) return {};
      int saved = errno;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int w = wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
        if (w == 0) return fmt::format("TLS handshake timed out after {} ms", cfg_.timeout_ms);
        if (w < 0) return fmt::format("TLS handshake: poll: {}", std::strerror(errno));
        continue;
      }
      long v = SSL_get_verify_result(ssl_);
      if (cfg_.tls_verify && v != X509_V_OK) {
        ERR_clear_error();
        return fmt::format("TLS handshake: certificate verification failed for '{}': {}",
                           server_name_, X509_verify_cert_error_string(v));
      }
      return "TLS handshake: " + ssl_error(ssl_, r, saved);
    }
  }

  // TLS 1.3 lets the client finish its handshake before the server has checked the client's
  // certificate (or its absence): a collector that refuses it says so afterwards, with an
  // alert, and a batch written at once would be lost while counting as delivered. So wait
  // (at most kTls13ConfirmMs, within deadline) for the server's first message after the
  // handshake: session tickets (OpenSSL and GnuTLS servers send them at once) confirm the
  // connection, an alert or a close is the error. A server that sends nothing costs the wait.
  std::string confirm_tls13(Clock::time_point deadline) {
    if (SSL_version(ssl_) != TLS1_3_VERSION) return {};
    deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(kTls13ConfirmMs));
    char buf[512];
    for (;;) {
      int w = wait_fd(fd_, POLLIN, deadline);
      if (w == 0) return {};
      if (w < 0) return fmt::format("TLS: poll: {}", std::strerror(errno));
      ERR_clear_error();
      errno = 0;
      int r = SSL_read(ssl_, buf, sizeof buf);
      if (r > 0) continue;  // unexpected data from the collector: ignored
      int saved = errno;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return {};
      return "the collector ended the TLS session after the handshake: " +
             ssl_error(ssl_, r, saved);
    }
  }

  std::string connect(Clock::time_point deadline) {
    std::string why = connect_socket(deadline);
    if (why.empty() && proto_ == Proto::kTls) why = handshake(deadline);
    if (why.empty() && proto_ == Proto::kTls) why = confirm_tls13(deadline);
    if (!why.empty()) disconnect();
    return why;
  }

  // Whether the kept stream connection still stands: the collector sends nothing on a syslog
  // connection (TLS: perhaps session tickets), so readable means closed unless TLS takes it.
  bool alive() {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return false;
    char buf[4096];
    if (!ssl_) {
      for (;;) {
        ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) continue;  // unexpected bytes from the collector: ignored
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
    }
    for (;;) {
      int r = SSL_read(ssl_, buf, sizeof buf);
      if (r > 0) continue;
      int e = SSL_get_error(ssl_, r);
      ERR_clear_error();
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
  }

  // ---- sending ---------------------------------------------------------------------------

  Delivery send_stream(const std::vector<std::string>& msgs) {
    if (fd_ >= 0 && !alive()) disconnect();
    if (fd_ < 0) {
      std::string why = connect(Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
      if (!why.empty()) return Delivery::retry(fmt::format("{}: {}", what_, why));
    }
    size_t total = 0;
    for (const auto& m : msgs) total += m.size() + 12;
    std::string buf;
    buf.reserve(total);
    for (const auto& m : msgs) {  // RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG
      buf += std::to_string(m.size());
      buf += ' ';
      buf += m;
    }
    std::string why = ssl_ ? write_tls(buf) : write_plain(buf);
    if (!why.empty()) return Delivery::retry(fmt::format("{}: {}", what_, why));
    return Delivery::ok();
  }

  std::string write_plain(std::string_view buf) {
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t n = ::send(fd_, buf.data() + done, buf.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int w = wait_fd(fd_, POLLOUT, Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
        if (w == 0)
          return fmt::format("send timed out after {} ms ({} of {} bytes sent)", cfg_.timeout_ms,
                             done, buf.size());
        if (w < 0) return fmt::format("poll: {}", std::strerror(errno));
        continue;
      }
      return fmt::format("send: {}", std::strerror(n < 0 ? errno : EPIPE));
    }
    return {};
  }

  std::string write_tls(std::string_view buf) {
    ERR_clear_error();
    size_t done = 0;
    while (done < buf.size()) {
      size_t chunk = std::min<size_t>(buf.size() - done, 1 << 30);
      errno = 0;
      int r = SSL_write(ssl_, buf.data() + done, static_cast<int>(chunk));
      if (r > 0) {
        done += static_cast<size_t>(r);
        continue;
      }
      int saved = errno;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        int w = wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                        Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
        if (w == 0)
          return fmt::format("TLS send timed out after {} ms ({} of {} bytes sent)",
                             cfg_.timeout_ms, done, buf.size());
        if (w < 0) return fmt::format("poll: {}", std::strerror(errno));
        continue;
      }
      return "TLS send: " + ssl_error(ssl_, r, saved);
    }
    return {};
  }

  Delivery send_datagrams(const std::vector<std::string>& msgs) {
    if (fd_ < 0) {
      std::string why = connect(Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
      if (!why.empty()) return Delivery::retry(fmt::format("{}: {}", what_, why));
    }
    std::vector<iovec> iov(msgs.size());
    std::vector<mmsghdr> hdr(msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
      size_t len = msgs[i].size();
      if (len > kUdpMaxMessage) {
        len = kUdpMaxMessage;  // cut, not inside a UTF-8 sequence
        while (len > 0 && (static_cast<unsigned char>(msgs[i][len]) & 0xC0) == 0x80) --len;
      }
      iov[i] = {const_cast<char*>(msgs[i].data()), len};
      hdr[i] = {};
      hdr[i].msg_hdr.msg_iov = &iov[i];
      hdr[i].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < hdr.size()) {
      unsigned n = static_cast<unsigned>(std::min<size_t>(hdr.size() - done, kMmsgChunk));
      int r = ::sendmmsg(fd_, hdr.data() + done, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r > 0) {
        done += static_cast<size_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        int w = wait_fd(fd_, POLLOUT, Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms));
        if (w == 0)
          return Delivery::retry(
              fmt::format("{}: send timed out after {} ms ({} of {} messages sent)", what_,
                          cfg_.timeout_ms, done, hdr.size()));
        if (w < 0) return Delivery::retry(fmt::format("{}: poll: {}", what_, std::strerror(errno)));
        continue;
      }
      // ECONNREFUSED here reports an ICMP "port unreachable" for an earlier datagram.
      return Delivery::retry(fmt::format("{}: send: {} ({} of {} messages sent)", what_,
                                         std::strerror(r < 0 ? errno : EIO), done, hdr.size()));
    }
    return Delivery::ok();
  }

  OutputConfig cfg_;
  SinkContext sctx_;
  Proto proto_;
  std::string host_, port_, server_name_, what_;
  SSL_CTX* tls_ = nullptr;  // for the next handshake (made afresh after each)
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

}  // namespace

bool is_ip_literal(const std::string& s) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Result<std::unique_ptr<Sink>> make_syslog_sink(const OutputConfig& cfg, const SinkContext& ctx) {
  std::string host, port;
  if (!split_address(cfg.address, host, port))
    return make_error(
        fmt::format("output '{}': address: expected HOST:PORT, got '{}'", cfg.name, cfg.address));
  Proto proto;
  if (cfg.protocol == "tcp")
    proto = Proto::kTcp;
  else if (cfg.protocol == "udp")
    proto = Proto::kUdp;
  else if (cfg.protocol == "tls")
    proto = Proto::kTls;
  else
    return make_error(fmt::format("output '{}': protocol: expected tcp, udp or tls, got '{}'",
                                  cfg.name, cfg.protocol));
  SSL_CTX* tls = nullptr;
  if (proto == Proto::kTls) {  // unreadable CA, certificate or key files are errors at start
    auto c = make_tls_ctx(cfg);
    if (!c) return make_error(fmt::format("output '{}': {}", cfg.name, c.message()));
    tls = *c;
  }
  return std::unique_ptr<Sink>(
      std::make_unique<SyslogSink>(cfg, ctx, proto, std::move(host), std::move(port), tls));
}

}  // namespace shaudit::daemon
