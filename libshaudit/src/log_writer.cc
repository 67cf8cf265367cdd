// SPDX-License-Identifier: Apache-2.0
#include "shaudit/log_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "shaudit/record.h"

namespace shaudit {
namespace {

int write_whole(int fd, std::string_view data);

constexpr size_t kMaxTail = 16u << 20;  // how far back we look for the last line

Result<std::string> pread_all(int fd, off_t off, size_t n) {
  std::string buf(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, off + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_error(std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  buf.resize(got);
  return buf;
}

struct Tail {
  std::string last_line;    // last complete line, without newline ("" when none)
  std::string partial;      // bytes after the last newline (crash residue)
  off_t complete_size = 0;  // file size up to and including the last newline
  std::string last_key_id;  // key_id of the newest record that has one (within the window)
};

Result<Tail> read_tail(int fd, off_t size) {
  Tail t;
  size_t want = 64 * 1024;
  while (true) {
    size_t n = static_cast<size_t>(std::min<off_t>(size, static_cast<off_t>(want)));
    auto buf = pread_all(fd, size - static_cast<off_t>(n), n);
    if (!buf) return buf.error();
    std::string_view b = *buf;
    size_t last_nl = b.rfind('\n');
    bool whole_file = n == static_cast<size_t>(size);
    if (last_nl == std::string_view::npos) {
      if (whole_file) {
        t.partial = std::string(b);
        t.complete_size = 0;
        return t;
      }
    } else {
      size_t prev_nl = last_nl == 0 ? std::string_view::npos : b.rfind('\n', last_nl - 1);
      if (prev_nl != std::string_view::npos || whole_file) {
        size_t start = prev_nl == std::string_view::npos ? 0 : prev_nl + 1;
        t.last_line = std::string(b.substr(start, last_nl - start));
        t.partial = std::string(b.substr(last_nl + 1));
        t.complete_size = size - static_cast<off_t>(b.size() - last_nl - 1);
        // Newest key_id in the window (seal or start records carry one).
        size_t pos = b.size();
        while (pos > 0) {
          size_t k = b.rfind("\"key_id\":\"", pos - 1);
          if (k == std::string_view::npos) break;
          size_t v = k + 10;
          size_t e = b.find('"', v);
          if (e != std::string_view::npos && e - v == 16) {
            t.last_key_id = std::string(b.substr(v, 16));
            break;
          }
          pos = k;
        }
        return t;
      }
    }
    if (want >= kMaxTail)
      return make_error(fmt::format("no line end in the last {} bytes", kMaxTail));
    want *= 4;
  }
}

// Calls f(line) for the complete lines of the file's first `size` bytes, the last one first,
// until f returns true (then true), looking back at most about `limit` bytes; false when f
// never did (or the file cannot be read).
template <class F>
bool scan_lines_back(int fd, off_t size, size_t limit, F&& f) {
  size_t want = 64 * 1024;
  uint64_t seen = 0;  // lines already given to f (a wider window reads them again)
  while (true) {
    size_t n = static_cast<size_t>(std::min<off_t>(size, static_cast<off_t>(want)));
    auto buf = pread_all(fd, size - static_cast<off_t>(n), n);
    if (!buf) return false;
    std::string_view b = *buf;
    bool whole = n == static_cast<size_t>(size);
    if (!b.empty() && b.back() == '\n') b.remove_suffix(1);
    size_t end = b.size();
    for (uint64_t k = 0;; ++k) {
      size_t nl = end == 0 ? std::string_view::npos : b.rfind('\n', end - 1);
      if (nl == std::string_view::npos && !whole) break;  // a line cut by the window
      size_t start = nl == std::string_view::npos ? 0 : nl + 1;
      if (k >= seen) {
        if (f(b.substr(start, end - start))) return true;
        seen = k + 1;
      }
      if (nl == std::string_view::npos) return false;
      end = nl;
    }
    if (whole || want >= limit) return false;
    want *= 4;
  }
}

// The line `back` lines before the last complete line (0: the last one) of the file's first
// `size` bytes, or nullopt when the file has fewer lines or they are too long to look at.
std::optional<std::string> line_from_end(int fd, off_t size, uint64_t back) {
  std::optional<std::string> out;
  uint64_t k = 0;
  scan_lines_back(fd, size, 4 * kMaxTail, [&](std::string_view line) {
    if (k++ < back) return false;
    out = std::string(line);
    return true;
  });
  return out;
}

// The last seal record among the file's first `size` bytes (looking back at most 64 MiB).
std::optional<json::Object> last_seal(int fd, off_t size) {
  constexpr std::string_view kSealType = "\"type\":\"seal\"";
  std::optional<json::Object> out;
  scan_lines_back(fd, size, 64u << 20, [&](std::string_view line) {
    if (line.find(kSealType) == std::string_view::npos) return false;
    auto v = json::parse(line);
    const std::string* type =
        v && v->is_object() ? json::get_string(v->as_object(), "type") : nullptr;
    if (!type || *type != record::kSeal) return false;
    out = v->as_object();
    return true;
  });
  return out;
}

// What the state file says (LogWriter::save_state writes it).
struct ChainState {
  uint64_t seq = 0;
  std::string hash, path;
  int64_t dev = 0, ino = 0;
};

// The state file: nullopt when it does not exist; an error when it cannot be read or parsed.
Result<std::optional<ChainState>> read_state(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<ChainState>();
    return make_error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  auto text = pread_all(fd, 0, 64 * 1024);
  ::close(fd);
  if (!text) return make_error(fmt::format("cannot read {}: {}", path, text.message()));
  auto v = json::parse(*text);
  const json::Object* o = v ? v->if_object() : nullptr;
  const int64_t* seq = o ? json::get_int(*o, "seq") : nullptr;
  const std::string* hash = o ? json::get_string(*o, "hash") : nullptr;
  const std::string* file = o ? json::get_string(*o, "path") : nullptr;
  const int64_t* dev = o ? json::get_int(*o, "dev") : nullptr;
  const int64_t* ino = o ? json::get_int(*o, "ino") : nullptr;
  if (!seq || *seq < 0 || !hash || !file || !dev || !ino)
    return make_error(fmt::format("{} is not a shaudit state file", path));
  return std::optional<ChainState>(
      ChainState{static_cast<uint64_t>(*seq), *hash, *file, *dev, *ino});
}

}  // namespace

LogWriter::LogWriter(WriterOptions opts) : opts_(std::move(opts)) {
  if (!opts_.clock_ns) opts_.clock_ns = record::now_ns;
  if (opts_.seal_every == 0) opts_.seal_every = 1;
  key_id_ = opts_.key_state ? opts_.key_state->root_key_id() : opts_.key->key_id();
}

LogWriter::~LogWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<LogWriter>> LogWriter::open(WriterOptions opts) {
  if (!opts.key && !opts.key_state) return make_error("log writer needs a signing key");
  std::unique_ptr<LogWriter> w(new LogWriter(std::move(opts)));
  auto r = w->open_file(/*at_start=*/true);
  if (!r) return r.error();
  if (auto rr = w->apply_retention(); !rr) return rr.error();
  return w;
}

namespace {

// One file of the rotated set, as retention sees it.
struct SetFile {
  std::string path;
  uint64_t size = 0;
  int64_t first_seq = 0, last_seq = 0;
  std::string first_type, first_prev, first_time, last_hash, last_time;
  int64_t last_time_ns = 0;
};

// The first and last complete lines of a file that holds shaudit records.
std::optional<SetFile> read_set_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  struct stat st;
  std::optional<SetFile> out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    auto tail = read_tail(fd, st.st_size);
    // The first line: usually within 64 KiB; a longer one is looked for up to kMaxTail.
    auto head = pread_all(fd, 0, static_cast<size_t>(std::min<off_t>(st.st_size, 64 * 1024)));
    size_t nl = head ? head->find('\n') : std::string::npos;
    if (head && nl == std::string::npos && st.st_size > 64 * 1024) {
      head = pread_all(fd, 0, static_cast<size_t>(std::min<off_t>(st.st_size, kMaxTail)));
      nl = head ? head->find('\n') : std::string::npos;
    }
    if (tail && !tail->last_line.empty() && nl != std::string::npos) {
      auto first = json::parse(std::string_view(*head).substr(0, nl));
      auto last = json::parse(tail->last_line);
      const json::Object* f = first ? first->if_object() : nullptr;
      const json::Object* l = last ? last->if_object() : nullptr;
      const int64_t* fs = f ? json::get_int(*f, "seq") : nullptr;
      const int64_t* ls = l ? json::get_int(*l, "seq") : nullptr;
      const std::string* ft = f ? json::get_string(*f, "type") : nullptr;
      const std::string* fp = f ? json::get_string(*f, "prev") : nullptr;
      const std::string* ftime = f ? json::get_string(*f, "time") : nullptr;
      const std::string* ltime = l ? json::get_string(*l, "time") : nullptr;
      auto lns = ltime ? record::parse_time(*ltime) : Result<int64_t>(make_error("no time"));
      if (fs && ls && ft && fp && ftime && lns) {
        SetFile sf;
        sf.path = path;
        sf.size = static_cast<uint64_t>(st.st_size);
        sf.first_seq = *fs;
        sf.last_seq = *ls;
        sf.first_type = *ft;
        sf.first_prev = *fp;
        sf.first_time = *ftime;
        sf.last_hash = crypto::to_hex(crypto::sha256(tail->last_line));
        sf.last_time = *ltime;
        sf.last_time_ns = *lns;
        out = std::move(sf);
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

Result<void> LogWriter::apply_retention() {
  if (opts_.retention_max_age_ns <= 0 && opts_.retention_max_total_bytes == 0) return {};
  if (fd_ < 0) return {};
  // The current file's beginning: a rotate record chains to the older file's last line.
  size_t slash = opts_.path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : opts_.path.substr(0, slash);
  std::string base = slash == std::string::npos ? opts_.path : opts_.path.substr(slash + 1);
  auto current = read_set_file(opts_.path);
  if (!current || current->first_type != record::kRotate) return {};
  // Candidates: files in the log's directory named after it (audit.jsonl.1, audit.jsonl-DATE).
  std::unordered_map<std::string, SetFile> by_last_hash;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() <= base.size() || name.compare(0, base.size(), base) != 0) continue;
      auto f = read_set_file(dir + "/" + name);
      if (f) by_last_hash.emplace(f->last_hash, std::move(*f));
    }
    ::closedir(d);
  }
  // The rotated set, newest first, by following the chain back.
  std::vector<SetFile> chain;
  std::string want = current->first_prev;
  while (true) {
    auto it = by_last_hash.find(want);
    if (it == by_last_hash.end()) break;
    chain.push_back(it->second);
    by_last_hash.erase(it);
    if (chain.back().first_type != record::kRotate) break;
    want = chain.back().first_prev;
  }
  uint64_t total = 0;
  for (const auto& f : chain) total += f.size;
  int64_t now = opts_.clock_ns();
  json::Array removed;
  std::string reasons;
  while (!chain.empty()) {
    const SetFile& f = chain.back();  // the oldest
    bool too_old =
        opts_.retention_max_age_ns > 0 && now - f.last_time_ns > opts_.retention_max_age_ns;
    bool too_big = opts_.retention_max_total_bytes > 0 && total > opts_.retention_max_total_bytes;
    if (!too_old && !too_big) break;
    if (::unlink(f.path.c_str()) != 0) {
      stats_.last_error =
          fmt::format("retention: cannot remove {}: {}", f.path, std::strerror(errno));
      break;
    }
    json::Object o;
    o["file"] = f.path;
    o["size"] = static_cast<int64_t>(f.size);
    o["first_seq"] = f.first_seq;
    o["first_prev"] = f.first_prev;
    o["first_time"] = f.first_time;
    o["last_seq"] = f.last_seq;
    o["last_hash"] = f.last_hash;
    o["last_time"] = f.last_time;
    o["reason"] = too_old ? "max_age_days" : "max_total_mib";
    removed.insert(removed.begin(), json::Value(std::move(o)));  // oldest first
    total -= f.size;
    chain.pop_back();
  }
  if (removed.empty()) return {};
  json::Object rec;
  rec["type"] = record::kRetention;
  rec["removed"] = std::move(removed);
  return write_line(std::move(rec), false);
}

Result<void> LogWriter::open_file(bool at_start) {
  const std::string& path = opts_.path;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return make_error(fmt::format("cannot open log {}: {}", path, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(fmt::format("log {}: not a regular file", path));
  }
  std::string previous_run = "none";
  std::string old_key_id;
  bool found_records = false;
  json::Object start = opts_.start_fields;
  bool rotated_new_file = false;
  if (st.st_size > 0) {
    auto tail = read_tail(fd, st.st_size);
    if (!tail) {
      ::close(fd);
      return make_error(fmt::format("log {}: cannot read its end: {}", path, tail.message()));
    }
    if (!tail->partial.empty()) {
      // A crash left a partial line: cut it off (keeping its bytes in the start record),
      // so the chain continues from the last complete record.
      if (::ftruncate(fd, tail->complete_size) != 0) {
        int e = errno;
        ::close(fd);
        return make_error(fmt::format("log {}: cannot cut off the partial last line: {}", path,
                                      std::strerror(e)));
      }
      json::Object t;
      t["length"] = static_cast<int64_t>(tail->partial.size());
      t["bytes_b64"] = crypto::base64_encode(tail->partial);
      t["offset"] = static_cast<int64_t>(tail->complete_size);
      start["truncated_tail"] = std::move(t);
    }
    if (tail->last_line.empty()) {
      seq_ = 0;
      prev_ = record::kGenesisPrev;
    } else {
      auto v = json::parse(tail->last_line);
      const int64_t* seq = v && v->is_object() ? json::get_int(v->as_object(), "seq") : nullptr;
      if (!seq || *seq < 1) {
        ::close(fd);
        return make_error(fmt::format(
            "log {}: the last line (ending at byte {}) is not a shaudit record{}{}; move the "
            "file aside to start a new log",
            path, tail->complete_size, v ? "" : ": ", v ? "" : v.message()));
      }
      const auto& o = v->as_object();
      seq_ = static_cast<uint64_t>(*seq);
      prev_ = crypto::to_hex(crypto::sha256(tail->last_line));
      const auto* type = json::get_string(o, "type");
      const auto* reason = json::get_string(o, "reason");
      previous_run = (type && *type == record::kSeal && reason && *reason == record::kSealClose)
                         ? "clean"
                         : "unclean";
      old_key_id = tail->last_key_id;
      found_records = true;
    }
  } else if (!at_start) {
    rotated_new_file = true;  // keep prev_ (chain continues across files); seq restarts
  } else {
    seq_ = 0;
    prev_ = record::kGenesisPrev;
  }
  std::optional<json::Object> chain_break, key_break;
  if (at_start && !opts_.state_path.empty())
    chain_break = check_state(fd, found_records ? lseek(fd, 0, SEEK_END) : 0, found_records);
  if (at_start && opts_.key_state)
    key_break = check_key_state(fd, found_records ? lseek(fd, 0, SEEK_END) : 0);
  if (at_start) epoch_started_ns_ = opts_.clock_ns();
  fd_ = fd;
  file_dev_ = static_cast<uint64_t>(st.st_dev);
  file_ino_ = static_cast<uint64_t>(st.st_ino);
  first_unsealed_ = 0;
  unsealed_ = 0;
  if (rotated_new_file) {
    json::Object rot;
    rot["type"] = record::kRotate;
    rot["prev_seq"] = static_cast<int64_t>(seq_);
    if (opts_.key_state) {
      // Where a verifier given only the newer files takes the key chain up.
      rot["key_id"] = key_id_;
      rot["epoch"] = static_cast<int64_t>(opts_.key_state->epoch());
      rot["epoch_pub_b64"] = crypto::base64_encode(opts_.key_state->public_raw());
    }
    seq_ = 0;
    auto r = write_line(std::move(rot), false);
    if (!r) return r;
    // The state names the new file at once, so a restart before its first seal finds it as
    // left. (The rotate record is made durable first.)
    if (!opts_.state_path.empty() && ::fdatasync(fd_) == 0) save_state();
    return {};
  }
  if (!at_start) return {};  // reopened the same, non-empty file: the chain just continues
  start["type"] = record::kStart;
  start["previous_run"] = previous_run;
  start["key_id"] = key_id_;
  if (opts_.key_state) {
    start["epoch"] = static_cast<int64_t>(opts_.key_state->epoch());
    if (!opts_.key_state->key_file_kept().empty())
      start["signing_key_kept"] = opts_.key_state->key_file_kept();
  }
  auto r = write_line(std::move(start), false);
  if (!r) return r;
  if (!old_key_id.empty() && old_key_id != key_id_) {
    json::Object kc;
    kc["type"] = record::kKeyChange;
    kc["old_key_id"] = old_key_id;
    kc["new_key_id"] = key_id_;
    kc["new_public_key_b64"] = crypto::base64_encode(
        opts_.key_state ? opts_.key_state->root_public_raw() : opts_.key->public_raw());
    r = write_line(std::move(kc), false);
    if (!r) return r;
  }
  for (auto* b : {&chain_break, &key_break}) {
    if (!*b) continue;
    r = write_line(std::move(**b), false);
    if (!r) return r;
  }
  // The state names this run's head at once (made durable first): a run killed before its
  // first seal leaves a log its state describes.
  if (!opts_.state_path.empty() && ::fdatasync(fd_) == 0) save_state();
  return {};
}

std::optional<json::Object> LogWriter::check_state(int fd, off_t size, bool found_records) {
  json::Object cb;
  cb["type"] = record::kChainBreak;
  cb["file"] = opts_.path;
  cb["state_file"] = opts_.state_path;
  if (found_records) {
    cb["found_seq"] = static_cast<int64_t>(seq_);
    cb["found_hash"] = prev_;
  }
  auto state = read_state(opts_.state_path);
  if (!state || !*state || (*state)->path != opts_.path) {
    if (!found_records) return std::nullopt;  // a first run: neither exists
    cb["found"] = "no_state";
    if (!state)
      cb["state_error"] = state.message();
    else if (*state)
      cb["state_error"] = fmt::format("the state file describes another log, {}", (*state)->path);
    return cb;
  }
  const ChainState& want = **state;
  cb["expected_seq"] = static_cast<int64_t>(want.seq);
  cb["expected_hash"] = want.hash;
  cb["expected_dev"] = want.dev;
  cb["expected_ino"] = want.ino;
  if (!found_records) {
    cb["found"] = "missing";
    return cb;
  }
  if (seq_ == want.seq && prev_ == want.hash) return std::nullopt;
  if (seq_ > want.seq) {
    // Records written after the last seal (a crash): the chain head it left must be among them.
    auto line = line_from_end(fd, size, seq_ - want.seq);
    if (line) {
      auto v = json::parse(*line);
      const int64_t* s = v && v->is_object() ? json::get_int(v->as_object(), "seq") : nullptr;
      if (s && static_cast<uint64_t>(*s) == want.seq &&
          crypto::to_hex(crypto::sha256(*line)) == want.hash)
        return std::nullopt;
    }
    cb["found"] = "different";
    return cb;
  }
  cb["found"] = seq_ < want.seq ? "shorter" : "different";
  return cb;
}

std::optional<json::Object> LogWriter::check_key_state(int fd, off_t size) {
  KeyState& ks = *opts_.key_state;
  std::optional<json::Object> seal = size > 0 ? last_seal(fd, size) : std::nullopt;
  const std::string* key_id = seal ? json::get_string(*seal, "key_id") : nullptr;
  if (!seal || !key_id || *key_id != ks.root_key_id()) {
    // No seal of this key chain in the log (a new log, a new key): nothing to continue.
    if (auto r = ks.settle(""); !r) stats_.last_error = r.message();
    stats_.epoch = ks.epoch();
    return std::nullopt;
  }
  const int64_t* epoch = json::get_int(*seal, "epoch");  // absent: a seal by the epoch-0 key
  uint64_t seal_epoch = epoch && *epoch > 0 ? static_cast<uint64_t>(*epoch) : 0;
  std::string certified;
  if (const std::string* n = json::get_string(*seal, "next_pub_b64"))
    if (auto raw = crypto::base64_decode(*n)) certified = *raw;
  if (auto r = ks.settle(certified); !r) stats_.last_error = r.message();
  stats_.epoch = ks.epoch();
  bool ok;
  uint64_t want_epoch = certified.empty() ? seal_epoch : seal_epoch + 1;
  if (!certified.empty()) {
    ok = ks.epoch() == want_epoch && ks.public_raw() == certified;
  } else {
    const std::string* sig = json::get_string(*seal, "sig");
    auto raw = sig ? crypto::base64_decode(*sig) : Result<std::string>(make_error("no sig"));
    auto vk = crypto::VerifyKey::from_raw(ks.public_raw());
    ok = ks.epoch() == want_epoch && raw && vk && vk->verify(record::seal_message(*seal), *raw);
  }
  if (ok) return std::nullopt;
  json::Object cb;
  cb["type"] = record::kChainBreak;
  cb["found"] = "key_state";
  cb["file"] = opts_.path;
  cb["key_state_file"] = ks.path();
  const int64_t* seq = json::get_int(*seal, "seq");
  if (seq) cb["seal_seq"] = *seq;
  cb["expected_epoch"] = static_cast<int64_t>(want_epoch);
  cb["found_epoch"] = static_cast<int64_t>(ks.epoch());
  return cb;
}

void LogWriter::save_state() {
  json::Object st;
  st["seq"] = static_cast<int64_t>(seq_);
  st["hash"] = prev_;
  st["path"] = opts_.path;
  st["dev"] = static_cast<int64_t>(file_dev_);
  st["ino"] = static_cast<int64_t>(file_ino_);
  std::string text = json::encode(json::Value(std::move(st)));
  text.push_back('\n');
  const std::string& path = opts_.state_path;
  std::string tmp = path + ".tmp";
  auto failed = [&](const char* what) {
    stats_.last_error = fmt::format("state file {}: {}: {}", path, what, std::strerror(errno));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return failed("cannot create");
  bool ok = write_whole(fd, text) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return failed("cannot write");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed("cannot rename");
  std::string dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

namespace {

// Writes data with one write(2) on an O_APPEND descriptor. A short or failed write is cut off
// again, so the file only ever holds whole lines. Returns 0, or the errno (ENOSPC for short).
int write_whole(int fd, std::string_view data) {
  ssize_t n;
  do {
    n = ::write(fd, data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(data.size())) return 0;
  int e = n < 0 ? errno : ENOSPC;
  if (n > 0) {
    struct stat st;
    if (::fstat(fd, &st) == 0 && st.st_size >= n) (void)!::ftruncate(fd, st.st_size - n);
  }
  return e;
}

}  // namespace

Result<void> LogWriter::write_line(json::Object fields, bool is_seal) {
  int64_t now = opts_.clock_ns();
  uint64_t seq = seq_ + 1;
  fields["seq"] = static_cast<int64_t>(seq);
  fields["time"] = record::format_time(now);
  fields["prev"] = prev_;
  if (is_seal) {
    auto sig = signer().sign(record::seal_message(fields));
    if (!sig) return sig.error();
    fields["sig"] = crypto::base64_encode(*sig);
  }
  line_.clear();
  json::Value rec(std::move(fields));
  json::encode(rec, line_);
  size_t body = line_.size();
  line_.push_back('\n');
  if (holding_ && !is_seal) {
    held_recs_.push_back({held_.size(), body, std::move(rec)});
    held_.append(line_);
    prev_ = crypto::to_hex(crypto::sha256(std::string_view(line_.data(), body)));
    seq_ = seq;
    ++stats_.records;
    if (unsealed_ == 0) {
      first_unsealed_ = seq;
      first_unsealed_ns_ = now;
    }
    ++unsealed_;
    stats_.unsealed = unsealed_;
    return {};
  }
  // One write(2) per record; a short or failed one leaves nothing in the file.
  if (int e = write_whole(fd_, line_); e != 0) {
    ++stats_.write_errors;
    stats_.last_error = fmt::format("write to {} failed: {}", opts_.path, std::strerror(e));
    return make_error(stats_.last_error);
  }
  prev_ = crypto::to_hex(crypto::sha256(std::string_view(line_.data(), body)));
  seq_ = seq;
  ++stats_.records;
  if (is_seal) {
    ++stats_.seals;
    stats_.last_seal_seq = seq;
    stats_.last_seal_ns = now;
    unsealed_ = 0;
    first_unsealed_ = 0;
  } else {
    if (unsealed_ == 0) {
      first_unsealed_ = seq;
      first_unsealed_ns_ = now;
    }
    ++unsealed_;
  }
  stats_.unsealed = unsealed_;
  if (opts_.on_written) opts_.on_written(std::string_view(line_.data(), body), rec.as_object());
  return {};
}

void LogWriter::hold() {
  if (holding_) return;
  holding_ = true;
  checkpoint_ = {seq_, first_unsealed_, unsealed_, first_unsealed_ns_, prev_, stats_};
}

Result<void> LogWriter::release() {
  if (!holding_) return {};
  holding_ = false;
  if (held_.empty()) return {};
  if (int e = write_whole(fd_, held_); e != 0) {
    uint64_t errors = stats_.write_errors + 1;
    seq_ = checkpoint_.seq;
    first_unsealed_ = checkpoint_.first_unsealed;
    unsealed_ = checkpoint_.unsealed;
    first_unsealed_ns_ = checkpoint_.first_unsealed_ns;
    prev_ = std::move(checkpoint_.prev);
    stats_ = std::move(checkpoint_.stats);
    stats_.write_errors = errors;
    stats_.last_error = fmt::format("write to {} failed: {}", opts_.path, std::strerror(e));
    held_.clear();
    held_recs_.clear();
    return make_error(stats_.last_error);
  }
  if (opts_.on_written)
    for (const Held& h : held_recs_)
      opts_.on_written(std::string_view(held_.data() + h.off, h.len), h.rec.as_object());
  held_.clear();
  held_recs_.clear();
  return {};
}

Result<void> LogWriter::append(json::Object fields) {
  auto r = write_line(std::move(fields), false);
  if (!r) return r;
  if (holding_) return {};  // the count seal waits for release()
  // The record is written: its result is success whatever happens to the count seal. A seal
  // that fails here stays due (see stats().last_error) and maybe_seal() writes it later, so a
  // caller that retries failed appends never writes a record twice.
  if (unsealed_ >= opts_.seal_every) (void)seal(record::kSealCount);
  return {};
}

int64_t LogWriter::seal_deadline_ns() const {
  if (unsealed_ == 0) return INT64_MAX;
  return first_unsealed_ns_ + opts_.seal_interval_ns;
}

Result<void> LogWriter::maybe_seal(int64_t now_ns) {
  if (unsealed_ == 0) return {};
  if (unsealed_ >= opts_.seal_every) return seal(record::kSealCount);
  if (now_ns >= seal_deadline_ns()) return seal(record::kSealInterval);
  return {};
}

Result<void> LogWriter::seal(std::string_view reason) {
  if (auto r = release(); !r) return r;
  json::Object s;
  s["type"] = record::kSeal;
  s["reason"] = std::string(reason);
  s["key_id"] = key_id_;
  s["first_seq"] = static_cast<int64_t>(unsealed_ ? first_unsealed_ : seq_ + 1);
  s["records"] = static_cast<int64_t>(unsealed_);
  KeyState* ks = opts_.key_state;
  bool evolve = false;
  if (ks) {
    s["epoch"] = static_cast<int64_t>(ks->epoch());
    int64_t now = opts_.clock_ns();
    if (reason == record::kSealClose || reason == record::kSealRotate || opts_.epoch_ns <= 0 ||
        now - epoch_started_ns_ >= opts_.epoch_ns) {
      // The next epoch's key is in the key state before the seal certifies it.
      if (auto next = ks->prepare_next()) {
        s["next_pub_b64"] = crypto::base64_encode(*next);
        evolve = true;
      } else {
        stats_.last_error = next.message();  // sealed without evolving; tried again next time
      }
    }
  }
  auto r = write_line(std::move(s), true);
  if (!r) {
    if (evolve) (void)ks->abandon_next();
    return r;
  }
  int sync_errno = ::fdatasync(fd_) != 0 ? errno : 0;
  if (evolve) {
    // The seal is in the file: the outgoing key is erased whatever fdatasync said.
    if (auto c = ks->commit_next(); !c) stats_.last_error = c.message();
    epoch_started_ns_ = opts_.clock_ns();
    stats_.epoch = ks->epoch();
  }
  if (sync_errno != 0) {
    ++stats_.write_errors;
    stats_.last_error =
        fmt::format("fdatasync {} failed: {}", opts_.path, std::strerror(sync_errno));
    return make_error(stats_.last_error);
  }
  if (!opts_.state_path.empty()) save_state();
  return {};
}

Result<void> LogWriter::rotate() {
  auto r = seal(record::kSealRotate);
  if (!r) return r;
  // Keep writing to the old file if the new one cannot be opened.
  int old_fd = fd_;
  uint64_t old_seq = seq_;
  std::string old_prev = prev_;
  r = open_file(/*at_start=*/false);
  if (!r) {
    if (fd_ != old_fd && fd_ >= 0) ::close(fd_);
    fd_ = old_fd;
    seq_ = old_seq;
    prev_ = old_prev;
    return r;
  }
  ::close(old_fd);
  return apply_retention();
}

Result<void> LogWriter::close() {
  if (fd_ < 0) return {};
  auto r = seal(record::kSealClose);
  if (!r) return r;
  ::close(fd_);
  fd_ = -1;
  return {};
}

}  // namespace shaudit
