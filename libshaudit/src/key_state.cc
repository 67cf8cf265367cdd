// SPDX-License-Identifier: Apache-2.0
#include "shaudit/key_state.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace shaudit {
namespace {

constexpr std::string_view kMagic = "SHAKST01";
constexpr std::string_view kCheckDomain = "shaudit-key-state-v1\n";
constexpr size_t kFileSize = 256;
constexpr size_t kSlotSize = 96;
constexpr off_t slot_offset(int slot) {
  return 64 + static_cast<off_t>(slot) * kSlotSize;
}

std::string errno_text() {
  return std::strerror(errno);
}

// Zeroes a buffer that held key material when it goes out of scope.
template <size_t N>
struct SecretBuf {
  std::array<uint8_t, N> b{};
  ~SecretBuf() { crypto::cleanse(b.data(), b.size()); }
};

std::string slot_check(std::string_view root_pub, uint64_t epoch, const uint8_t* seed,
                       std::string_view pub) {
  SecretBuf<kCheckDomain.size() + 32 + 8 + 32 + 32> m;
  size_t o = 0;
  std::memcpy(m.b.data() + o, kCheckDomain.data(), kCheckDomain.size());
  o += kCheckDomain.size();
  std::memcpy(m.b.data() + o, root_pub.data(), 32);
  o += 32;
  for (int i = 0; i < 8; ++i) m.b[o++] = static_cast<uint8_t>(epoch >> (8 * i));
  std::memcpy(m.b.data() + o, seed, 32);
  o += 32;
  std::memcpy(m.b.data() + o, pub.data(), 32);
  auto d = crypto::sha256(std::string_view(reinterpret_cast<const char*>(m.b.data()), m.b.size()));
  return std::string(reinterpret_cast<const char*>(d.data()), 16);
}

struct Slot {
  uint64_t epoch = 0;
  std::optional<crypto::SigningKey> key;
  std::string pub;
};

// A slot of the file: nullopt when it is erased or does not check.
std::optional<Slot> parse_slot(std::string_view root_pub, const uint8_t* p) {
  uint64_t epoch = 0;
  for (int i = 0; i < 8; ++i) epoch |= static_cast<uint64_t>(p[i]) << (8 * i);
  const uint8_t* seed = p + 8;
  std::string pub(reinterpret_cast<const char*>(p + 40), 32);
  std::string check(reinterpret_cast<const char*>(p + 72), 16);
  if (slot_check(root_pub, epoch, seed, pub) != check) return std::nullopt;
  auto key =
      crypto::SigningKey::from_seed(std::string_view(reinterpret_cast<const char*>(seed), 32));
  if (!key || key->public_raw() != pub) return std::nullopt;
  Slot s;
  s.epoch = epoch;
  s.key.emplace(std::move(*key));
  s.pub = std::move(pub);
  return s;
}

struct Parsed {
  std::string root_pub;
  std::optional<Slot> slots[2];
};

Result<Parsed> parse_file(int fd, const std::string& path) {
  SecretBuf<kFileSize> buf;
  size_t got = 0;
  while (got < kFileSize) {
    ssize_t n = ::pread(fd, buf.b.data() + got, kFileSize - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(fmt::format("key state {}: {}", path, errno_text()));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got != kFileSize || std::memcmp(buf.b.data(), kMagic.data(), kMagic.size()) != 0)
    return make_error(fmt::format("key state {}: not a shaudit key state file", path));
  Parsed p;
  p.root_pub.assign(reinterpret_cast<const char*>(buf.b.data() + 8), 32);
  for (int i = 0; i < 2; ++i) p.slots[i] = parse_slot(p.root_pub, buf.b.data() + slot_offset(i));
  if (!p.slots[0] && !p.slots[1])
    return make_error(fmt::format("key state {}: it holds no valid key (damaged or erased)", path));
  if (p.slots[0] && p.slots[1]) {
    uint64_t a = p.slots[0]->epoch, b = p.slots[1]->epoch;
    if (a + 1 != b && b + 1 != a)
      return make_error(fmt::format(
          "key state {}: damaged (it holds keys of epochs {} and {}, not of two consecutive ones)",
          path, a, b));
  }
  return p;
}

// The key file: a PEM private key, the note left after its key moved, or missing.
enum class KeyFile { kKey, kMoved, kMissing };

Result<KeyFile> key_file_kind(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return KeyFile::kMissing;
    return make_error(fmt::format("signing key {}: {}", path, errno_text()));
  }
  char head[64];
  ssize_t n;
  do {
    n = ::pread(fd, head, sizeof head, 0);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n < 0) return make_error(fmt::format("signing key {}: {}", path, errno_text()));
  std::string_view h(head, static_cast<size_t>(n));
  return h.substr(0, kConsumedKeyMarker.size()) == kConsumedKeyMarker ? KeyFile::kMoved
                                                                      : KeyFile::kKey;
}

int write_all_at(int fd, const void* data, size_t n, off_t off) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    p += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
  return 0;
}

void sync_dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// Erases the private key from the key file: its bytes overwritten with zeros in place
// (fsync'd), then the file holds a note naming where the key went.
Result<void> erase_key_file(const std::string& key_path, const std::string& state_path,
                            const std::string& root_id) {
  int fd = ::open(key_path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return make_error(fmt::format("signing key {}: cannot erase it: {}", key_path, errno_text()));
  struct stat st;
  int e = 0;
  if (::fstat(fd, &st) != 0) e = errno;
  if (e == 0 && st.st_size > 0) {
    std::string zeros(static_cast<size_t>(st.st_size), '\0');
    e = write_all_at(fd, zeros.data(), zeros.size(), 0);
    if (e == 0 && ::fsync(fd) != 0) e = errno;
  }
  std::string note = fmt::format(
      "{} into the forward-secure key state {}\n"
      "# epoch-0 key id {} (KEY.pub verifies the log); shauditd erased the private key here.\n"
      "# A new key: move this file and its .pub aside (keep the .pub: it verifies the log so "
      "far), then run shaudit keygen --out {}\n",
      kConsumedKeyMarker, state_path, root_id, key_path);
  if (e == 0 && ::ftruncate(fd, 0) != 0) e = errno;
  if (e == 0) e = write_all_at(fd, note.data(), note.size(), 0);
  if (e == 0 && ::fsync(fd) != 0) e = errno;
  ::close(fd);
  if (e != 0)
    return make_error(
        fmt::format("signing key {}: cannot erase it: {}", key_path, std::strerror(e)));
  return {};
}

}  // namespace

KeyState::~KeyState() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> KeyState::sync() {
  if (::fdatasync(fd_) != 0)
    return make_error(fmt::format("key state {}: fdatasync: {}", path_, errno_text()));
  return {};
}

Result<void> KeyState::write_slot(int slot, uint64_t epoch, const crypto::SigningKey* key) {
  SecretBuf<kSlotSize> b;
  if (key) {
    for (int i = 0; i < 8; ++i) b.b[i] = static_cast<uint8_t>(epoch >> (8 * i));
    uint8_t seed[32];
    if (!key->seed(seed))
      return make_error(fmt::format("key state {}: cannot read the key", path_));
    std::memcpy(b.b.data() + 8, seed, 32);
    std::string pub = key->public_raw();
    std::memcpy(b.b.data() + 40, pub.data(), 32);
    std::string check = slot_check(root_pub_, epoch, seed, pub);
    crypto::cleanse(seed, sizeof seed);
    std::memcpy(b.b.data() + 72, check.data(), 16);
  }
  if (int e = write_all_at(fd_, b.b.data(), b.b.size(), slot_offset(slot)); e != 0)
    return make_error(fmt::format("key state {}: write: {}", path_, std::strerror(e)));
  return sync();
}

Result<std::unique_ptr<KeyState>> KeyState::open(const std::string& key_path,
                                                 const std::string& state_path) {
  auto kind = key_file_kind(key_path);
  if (!kind) return kind.error();
  std::optional<crypto::SigningKey> fresh;
  if (*kind == KeyFile::kKey) {
    auto k = crypto::SigningKey::load(key_path);
    if (!k) return k.error();
    fresh.emplace(std::move(*k));
  }
  std::unique_ptr<KeyState> ks(new KeyState());
  ks->path_ = state_path;
  int fd = ::open(state_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno != ENOENT)
    return make_error(fmt::format("key state {}: {}", state_path, errno_text()));
  if (fd >= 0) {
    ks->fd_ = fd;
    struct stat st;
    if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
      return make_error(fmt::format(
          "key state {} is readable or writable by group or others (mode {:04o}); run: chmod "
          "600 {}",
          state_path, st.st_mode & 07777, state_path));
    auto p = parse_file(fd, state_path);
    if (!p && fresh) p = Parsed{};  // (a state left unwritten by a crash at its creation)
    if (!p) return p.error();
    if (p->root_pub.empty()) p->root_pub = std::string(32, '\0');
    ks->root_pub_ = p->root_pub;
    ks->root_id_ = crypto::key_id_of(p->root_pub);
    bool same_key = fresh && fresh->public_raw() == p->root_pub;
    if (!fresh || same_key) {
      // Continue the state (a key file that still holds its epoch-0 key: shauditd stopped
      // between writing the state and erasing the key file: erase it now).
      int cur = !p->slots[1]                              ? 0
                : !p->slots[0]                            ? 1
                : p->slots[0]->epoch < p->slots[1]->epoch ? 0
                                                          : 1;
      ks->slot_ = cur;
      ks->epoch_ = p->slots[cur]->epoch;
      ks->key_ = std::move(p->slots[cur]->key);
      ks->pub_ = p->slots[cur]->pub;
      if (p->slots[1 - cur]) {
        ks->next_key_ = std::move(p->slots[1 - cur]->key);
        ks->next_pub_ = p->slots[1 - cur]->pub;
      }
      if (same_key)
        if (auto r = erase_key_file(key_path, state_path, ks->root_id_); !r)
          ks->key_kept_ = r.message();
      return ks;
    }
    // A new key in the key file: the state starts again from it (the old keys are erased).
  } else {
    if (*kind == KeyFile::kMoved)
      return make_error(fmt::format(
          "signing key {} was moved into the key state {}, which is missing: the log's key "
          "chain cannot continue. Restore {}, or move {} and {}.pub aside (keep the .pub: it "
          "verifies the log so far) and create a new key with `shaudit keygen --out {}`",
          key_path, state_path, state_path, key_path, key_path, key_path));
    if (*kind == KeyFile::kMissing)
      return make_error(fmt::format("signing key {}: {}", key_path, std::strerror(ENOENT)));
    fd = ::open(state_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return make_error(
          fmt::format("key state {}: cannot create it: {}", state_path, errno_text()));
    ks->fd_ = fd;
  }
  ks->root_pub_ = fresh->public_raw();
  ks->root_id_ = fresh->key_id();
  std::string header(64, '\0');
  std::memcpy(header.data(), kMagic.data(), kMagic.size());
  std::memcpy(header.data() + 8, ks->root_pub_.data(), 32);
  if (::ftruncate(ks->fd_, kFileSize) != 0)
    return make_error(fmt::format("key state {}: {}", state_path, errno_text()));
  if (int e = write_all_at(ks->fd_, header.data(), header.size(), 0); e != 0)
    return make_error(fmt::format("key state {}: write: {}", state_path, std::strerror(e)));
  if (auto r = ks->write_slot(1, 0, nullptr); !r) return r.error();
  if (auto r = ks->write_slot(0, 0, &*fresh); !r) return r.error();
  if (::fsync(ks->fd_) != 0)
    return make_error(fmt::format("key state {}: fsync: {}", state_path, errno_text()));
  sync_dir_of(state_path);
  ks->slot_ = 0;
  ks->epoch_ = 0;
  ks->pub_ = fresh->public_raw();
  ks->key_ = std::move(fresh);
  if (auto r = erase_key_file(key_path, state_path, ks->root_id_); !r) ks->key_kept_ = r.message();
  return ks;
}

Result<void> KeyState::settle(std::string_view certified_pub) {
  if (!next_key_) return {};
  if (!certified_pub.empty() && certified_pub == next_pub_) return commit_next();
  return abandon_next();
}

Result<std::string> KeyState::prepare_next() {
  if (next_key_) return next_pub_;  // prepared before and not yet certified: the same key
  auto k = crypto::SigningKey::generate();
  if (!k) return k.error();
  if (epoch_ == UINT64_MAX) return make_error("key state: no epoch after the last one");
  if (auto r = write_slot(1 - slot_, epoch_ + 1, &*k); !r) return r.error();
  next_pub_ = k->public_raw();
  next_key_.emplace(std::move(*k));
  return next_pub_;
}

Result<void> KeyState::commit_next() {
  if (!next_key_) return {};
  int old = slot_;
  key_ = std::move(next_key_);  // the outgoing key is freed (OpenSSL clears it)
  next_key_.reset();
  pub_ = std::move(next_pub_);
  next_pub_.clear();
  ++epoch_;
  slot_ = 1 - old;
  return write_slot(old, 0, nullptr);
}

Result<void> KeyState::abandon_next() {
  if (!next_key_) return {};
  next_key_.reset();
  next_pub_.clear();
  return write_slot(1 - slot_, 0, nullptr);
}

Result<std::optional<KeyState::Summary>> KeyState::inspect(const std::string& state_path) {
  int fd = ::open(state_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Summary>();
    return make_error(fmt::format("key state {}: {}", state_path, errno_text()));
  }
  auto p = parse_file(fd, state_path);
  ::close(fd);
  if (!p) return p.error();
  Summary s;
  s.root_key_id = crypto::key_id_of(p->root_pub);
  s.pending = p->slots[0] && p->slots[1];
  s.epoch = !p->slots[1]   ? p->slots[0]->epoch
            : !p->slots[0] ? p->slots[1]->epoch
                           : std::min(p->slots[0]->epoch, p->slots[1]->epoch);
  return std::optional<Summary>(s);
}

}  // namespace shaudit
