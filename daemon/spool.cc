// SPDX-License-Identifier: Apache-2.0
#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace shaudit::daemon {

namespace {

constexpr uint64_t kSegmentBytes = 8u << 20;  // a new segment after this many bytes

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(fmt::format("{}: {}", path, std::strerror(errno)));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return make_error(fmt::format("{}: {}", path, std::strerror(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Spool::Spool(Spool&& o) noexcept {
  *this = std::move(o);
}

Spool& Spool::operator=(Spool&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    dir_ = std::move(o.dir_);
    max_bytes_ = o.max_bytes_;
    fd_ = o.fd_;
    o.fd_ = -1;
    segment_ = o.segment_;
    segment_size_ = o.segment_size_;
    lines_ = std::move(o.lines_);
    bytes_ = o.bytes_;
    loaded_ = o.loaded_;
    last_appended_ = std::move(o.last_appended_);
    last_error_ = std::move(o.last_error_);
  }
  return *this;
}

Spool::~Spool() {
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

std::string Spool::seg_path(uint64_t n) const {
  return fmt::format("{}/{:016d}.jsonl", dir_, n);
}

Result<void> Spool::open_segment(uint64_t n) {
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  std::string p = seg_path(n);
  fd_ = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) return make_error(fmt::format("spool {}: {}", p, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd_, &st) != 0)
    return make_error(fmt::format("spool {}: {}", p, std::strerror(errno)));
  segment_ = n;
  segment_size_ = static_cast<uint64_t>(st.st_size);
  return {};
}

Result<Spool> Spool::open(std::string dir, uint64_t max_bytes) {
  Spool s;
  s.dir_ = std::move(dir);
  s.max_bytes_ = max_bytes;
  // mkdir -p, 0700: spooled records are as private as the log.
  for (size_t i = 1; i <= s.dir_.size(); ++i)
    if (i == s.dir_.size() || s.dir_[i] == '/') {
      std::string part = s.dir_.substr(0, i);
      if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error(
            fmt::format("spool {}: cannot create {}: {}", s.dir_, part, std::strerror(errno)));
    }
  // The cursor: where the unacknowledged lines begin.
  uint64_t cur_seg = 0, cur_off = 0;
  if (auto c = read_file(s.dir_ + "/cursor")) {
    std::string_view v = *c;
    size_t sp = v.find(' ');
    size_t nl = v.find('\n');
    if (sp == std::string_view::npos || nl == std::string_view::npos || nl < sp ||
        !parse_u64(v.substr(0, sp), cur_seg) || !parse_u64(v.substr(sp + 1, nl - sp - 1), cur_off))
      return make_error(
          fmt::format("spool {}/cursor: malformed (expected \"SEGMENT OFFSET\")", s.dir_));
  }
  std::vector<uint64_t> segs;
  if (DIR* d = ::opendir(s.dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      uint64_t n;
      if (name.size() == 22 && name.substr(16) == ".jsonl" && parse_u64(name.substr(0, 16), n))
        segs.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(segs.begin(), segs.end());
  for (uint64_t n : segs) {
    if (n < cur_seg) {  // wholly acknowledged before a crash removed it
      ::unlink(s.seg_path(n).c_str());
      continue;
    }
    auto text = read_file(s.seg_path(n));
    if (!text) return make_error(fmt::format("spool: {}", text.message()));
    uint64_t off = n == cur_seg ? std::min<uint64_t>(cur_off, text->size()) : 0;
    size_t pos = off;
    while (pos < text->size()) {
      size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) {
        // A partial line from a crash mid-write: cut it off (it was never acknowledged as
        // spooled; the record itself is in the log).
        if (::truncate(s.seg_path(n).c_str(), static_cast<off_t>(pos)) != 0)
          return make_error(fmt::format("spool {}: cannot cut a partial line: {}", s.seg_path(n),
                                        std::strerror(errno)));
        break;
      }
      s.lines_.push_back({text->substr(pos, nl - pos), n, nl + 1});
      s.bytes_ += nl + 1 - pos;
      pos = nl + 1;
    }
    // The last line ever appended (acknowledged or not): where a catch-up from the log starts.
    if (pos > 0) {
      std::string_view body(text->data(), pos - 1);  // whole lines, without the last newline
      size_t b = body.rfind('\n');
      s.last_appended_ = std::string(b == std::string_view::npos ? body : body.substr(b + 1));
    }
  }
  s.loaded_ = s.lines_.size();
  uint64_t last = segs.empty() ? cur_seg : std::max(segs.back(), cur_seg);
  if (auto r = s.open_segment(last); !r) return r.error();
  return s;
}

bool Spool::append(std::string_view line) {
  uint64_t size = line.size() + 1;
  if (bytes_ + size > max_bytes_) return false;
  if (segment_size_ >= kSegmentBytes) {
    if (auto r = open_segment(segment_ + 1); !r) {
      last_error_ = r.message();
      return false;
    }
  }
  std::string buf;
  buf.reserve(size);
  buf.append(line);
  buf.push_back('\n');
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd_, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      last_error_ = fmt::format("spool {}: write: {}", seg_path(segment_),
                                std::strerror(n < 0 ? errno : ENOSPC));
      if (done > 0) (void)::ftruncate(fd_, static_cast<off_t>(segment_size_));
      return false;
    }
    done += static_cast<size_t>(n);
  }
  segment_size_ += size;
  lines_.push_back({std::string(line), segment_, segment_size_});
  last_appended_ = std::string(line);
  bytes_ += size;
  return true;
}

void Spool::sync() {
  if (fd_ >= 0) ::fdatasync(fd_);
}

std::vector<std::string> Spool::peek(size_t n, size_t skip) const {
  std::vector<std::string> out;
  skip = std::min(skip, lines_.size());
  n = std::min(n, lines_.size() - skip);
  out.reserve(n);
  for (size_t i = skip; i < skip + n; ++i) out.push_back(lines_[i].text);
  return out;
}

Result<void> Spool::ack(size_t n) {
  n = std::min(n, lines_.size());
  if (n == 0) return {};
  uint64_t seg = lines_[n - 1].segment, off = lines_[n - 1].end;
  for (size_t i = 0; i < n; ++i) {
    bytes_ -= lines_.front().text.size() + 1;
    lines_.pop_front();
  }
  if (!lines_.empty() && lines_.front().segment != seg) {
    seg = lines_.front().segment;  // the next line starts a later segment
    off = 0;
  }
  std::string tmp = dir_ + "/cursor.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(fmt::format("spool {}: {}", tmp, std::strerror(errno)));
  std::string text = fmt::format("{} {}\n", seg, off);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fdatasync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (dir_ + "/cursor").c_str()) != 0)
    return make_error(
        fmt::format("spool {}: cannot record the cursor: {}", dir_, std::strerror(errno)));
  // Segments wholly acknowledged are not needed any more.
  for (uint64_t s = seg; s-- > 0;) {
    if (::unlink(seg_path(s).c_str()) != 0) break;
  }
  return {};
}

}  // namespace shaudit::daemon
