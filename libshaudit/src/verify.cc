#include "shaudit/verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "internal/fd.h"
#include "shaudit/json.h"
#include "shaudit/record.h"

namespace shaudit {
namespace {

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

class Verifier {
 public:
  Verifier(const VerifyOptions& opts, VerifyReport& rep) : opts_(opts), rep_(rep) {}

  bool file(const std::string& path, size_t index, size_t count) {
    path_ = path;
    file_index_ = index;
    internal::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail(std::nullopt, fmt::format("{}: {}", path, std::strerror(errno)));
    line_no_ = 0;
    first_in_file_ = true;
    std::string buf;
    std::string carry;
    char chunk[1 << 20];
    while (true) {
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(std::nullopt, fmt::format("{}: {}", path, std::strerror(errno)));
      if (n == 0) break;
      std::string_view data(chunk, static_cast<size_t>(n));
      size_t start = 0;
      while (true) {
        size_t nl = data.find('\n', start);
        if (nl == std::string_view::npos) {
          carry.append(data.substr(start));
          break;
        }
        bool good;
        if (carry.empty()) {
          good = line(data.substr(start, nl - start));
        } else {
          carry.append(data.substr(start, nl - start));
          good = line(carry);
          carry.clear();
        }
        if (!good) return false;
        start = nl + 1;
      }
    }
    if (!carry.empty())
      return fail(seq_ + 1, fmt::format("{}: line {} is cut short (no newline at the end of the "
                                        "file): the record after seq {} is incomplete",
                                        path, line_no_ + 1, seq_));
    if (first_in_file_) return fail(std::nullopt, fmt::format("{}: the file is empty", path));
    if (index + 1 < count && !(last_type_ == record::kSeal && last_reason_ == record::kSealRotate))
      return fail(seq_ + 1, fmt::format("{} ends at seq {} without a rotation seal, but another "
                                        "file follows it in the set",
                                        path, seq_));
    return true;
  }

  bool finish(size_t count) {
    if (last_type_ == record::kSeal && last_reason_ == record::kSealClose) {
      rep_.unsealed = 0;
      return true;
    }
    if (last_type_ == record::kSeal && last_reason_ == record::kSealRotate) {
      if (opts_.allow_open) {
        rep_.notes.push_back(fmt::format(
            "{} ends with a rotation seal: the newer file of the rotated set was not given",
            path_));
        return true;
      }
      return fail(seq_ + 1, fmt::format("{} ends with a rotation seal at seq {}: the newer file "
                                        "of the rotated set is missing",
                                        path_, seq_));
    }
    if (opts_.allow_open) {
      rep_.unsealed = unsealed_;
      return true;
    }
    (void)count;
    return fail(seq_ + 1,
                fmt::format("{} does not end with a closing seal (last record: seq {}, type {}): "
                            "the log was cut short after seq {}, or shauditd has not stopped "
                            "cleanly yet (--allow-open accepts a live log)",
                            path_, seq_, last_type_, seq_));
  }

 private:
  bool fail(std::optional<uint64_t> seq, std::string msg) {
    rep_.bad_seq = seq;
    rep_.error = std::move(msg);
    return false;
  }

  bool line(std::string_view text) {
    ++line_no_;
    uint64_t expect = first_in_file_ ? 1 : seq_ + 1;
    auto v = json::parse(text);
    if (!v || !v->is_object())
      return fail(expect, fmt::format("{} line {}: seq {} (expected here) is not a valid record: {}",
                                      path_, line_no_, expect,
                                      v ? "not a JSON object" : v.message()));
    const auto& o = v->as_object();
    const int64_t* seq = json::get_int(o, "seq");
    const std::string* type = json::get_string(o, "type");
    const std::string* prev = json::get_string(o, "prev");
    const std::string* time = json::get_string(o, "time");
    if (!seq || !type || !prev || !time || !is_hex64(*prev))
      return fail(expect, fmt::format("{} line {}: record lacks a valid seq, type, time or prev "
                                      "(expected seq {})",
                                      path_, line_no_, expect));
    uint64_t s = static_cast<uint64_t>(*seq);
    if (json::encode(*v) != text)
      return fail(s, fmt::format("{} line {}: seq {} is not in canonical form: it was edited",
                                 path_, line_no_, s));
    if (!record::parse_time(*time))
      return fail(s, fmt::format("{} line {}: seq {} has an invalid time", path_, line_no_, s));
    auto hash = crypto::to_hex(crypto::sha256(text));
    if (first_in_file_) {
      if (file_index_ == 0) {
        if (*type == record::kStart && *prev == record::kGenesisPrev) {
          // the beginning of a chain
        } else if (*type == record::kRotate) {
          rep_.notes.push_back(fmt::format(
              "{} begins at a rotation (the older file, which ended at seq {}, was not given)",
              path_, json::get_int(o, "prev_seq") ? *json::get_int(o, "prev_seq") : 0));
        } else {
          // The first offending seq is the first one removed: seq 1.
          return fail(1, fmt::format("{} line 1: the log begins with seq {} ({}), which neither "
                                     "starts a chain nor follows a rotation: records before it "
                                     "were removed",
                                     path_, s, *type));
        }
        if (s != 1)
          return fail(1, fmt::format("{} line 1: the log begins with seq {}, expected seq 1: "
                                     "records before it were removed",
                                     path_, s));
      } else {
        if (*type != record::kRotate || s != 1 || *prev != last_hash_)
          return fail(s, fmt::format("{} does not continue {} (first record seq {}, type {}): a "
                                     "file of the rotated set is missing or out of order",
                                     path_, prev_path_, s, *type));
      }
    } else {
      if (s != expect) {
        if (s > expect)
          return fail(expect,
                      fmt::format("{} line {}: seq {} is missing (seq {} follows seq {}): records "
                                  "were removed or reordered",
                                  path_, line_no_, expect, s, seq_));
        return fail(s, fmt::format("{} line {}: seq {} appears again or out of order after seq "
                                   "{}: records were inserted or reordered",
                                   path_, line_no_, s, seq_));
      }
      if (*prev != last_hash_)
        return fail(seq_, fmt::format("{} line {}: seq {} was changed, or a record was inserted "
                                      "after it: the prev of seq {} does not match its hash",
                                      path_, line_no_ - 1, seq_, s));
    }
    if (*type == record::kSeal && !seal(o, s)) return false;
    if (*type == record::kSeal) {
      ++rep_.seals;
      unsealed_ = 0;
      const std::string* reason = json::get_string(o, "reason");
      last_reason_ = reason ? *reason : "";
    } else {
      ++unsealed_;
      last_reason_.clear();
    }
    last_type_ = *type;
    last_hash_ = std::move(hash);
    prev_path_ = path_;
    seq_ = s;
    first_in_file_ = false;
    ++rep_.records;
    return true;
  }

  bool seal(const json::Object& o, uint64_t s) {
    const std::string* key_id = json::get_string(o, "key_id");
    const std::string* sig_b64 = json::get_string(o, "sig");
    if (!key_id || !sig_b64)
      return fail(s, fmt::format("{} line {}: seal seq {} lacks key_id or sig", path_, line_no_, s));
    const crypto::VerifyKey* key = nullptr;
    for (const auto& k : opts_.keys)
      if (k.key_id() == *key_id) key = &k;
    if (!key)
      return fail(s, fmt::format("{} line {}: seal seq {} is signed by key {}, which is not among "
                                 "the given public keys",
                                 path_, line_no_, s, *key_id));
    auto sig = crypto::base64_decode(*sig_b64);
    if (!sig || !key->verify(record::seal_message(o), *sig))
      return fail(s, fmt::format("{} line {}: seal seq {} has an invalid signature: the records "
                                 "it covers were rewritten",
                                 path_, line_no_, s));
    return true;
  }

  const VerifyOptions& opts_;
  VerifyReport& rep_;
  std::string path_, prev_path_;
  size_t file_index_ = 0;
  uint64_t line_no_ = 0;
  bool first_in_file_ = true;
  uint64_t seq_ = 0;
  uint64_t unsealed_ = 0;
  std::string last_hash_;
  std::string last_type_;
  std::string last_reason_;
};

}  // namespace

VerifyReport verify_logs(const std::vector<std::string>& paths, const VerifyOptions& opts) {
  VerifyReport rep;
  if (paths.empty()) {
    rep.error = "no log file given";
    return rep;
  }
  if (opts.keys.empty()) {
    rep.error = "no public key given";
    return rep;
  }
  Verifier v(opts, rep);
  for (size_t i = 0; i < paths.size(); ++i)
    if (!v.file(paths[i], i, paths.size())) return rep;
  rep.ok = v.finish(paths.size());
  return rep;
}

}  // namespace shaudit
