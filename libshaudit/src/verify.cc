// SPDX-License-Identifier: Apache-2.0
#include "shaudit/verify.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>

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

// The signature check every seal gets, in the log or received elsewhere.
enum class SealCheck { kOk, kMissing, kUnknownKey, kBadSignature };

SealCheck check_seal(const json::Object& o, const std::vector<crypto::VerifyKey>& keys,
                     std::string& key_id_out) {
  const std::string* key_id = json::get_string(o, "key_id");
  const std::string* sig_b64 = json::get_string(o, "sig");
  if (!key_id || !sig_b64) return SealCheck::kMissing;
  key_id_out = *key_id;
  const crypto::VerifyKey* key = nullptr;
  for (const auto& k : keys)
    if (k.key_id() == *key_id) key = &k;
  if (!key) return SealCheck::kUnknownKey;
  auto sig = crypto::base64_decode(*sig_b64);
  if (!sig || !key->verify(record::seal_message(o), *sig)) return SealCheck::kBadSignature;
  return SealCheck::kOk;
}

// Calls f(line) for every line of the file until f returns false. A last line without a
// newline goes to *tail when tail is given, else to f too. False with err set when the file
// cannot be read.
template <class F>
bool for_each_line(const std::string& path, std::string& err, F f, std::string* tail = nullptr) {
  internal::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    err = fmt::format("{}: {}", path, std::strerror(errno));
    return false;
  }
  std::string carry;
  static thread_local char chunk[1 << 20];
  while (true) {
    ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = fmt::format("{}: {}", path, std::strerror(errno));
      return false;
    }
    if (n == 0) break;
    std::string_view data(chunk, static_cast<size_t>(n));
    size_t start = 0;
    while (true) {
      size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) {
        carry.append(data.substr(start));
        break;
      }
      bool more;
      if (carry.empty()) {  // the common case: the whole line is in this chunk, no copy
        more = f(data.substr(start, nl - start));
      } else {
        carry.append(data.substr(start, nl - start));
        more = f(std::string_view(carry));
        carry.clear();
      }
      if (!more) return true;
      start = nl + 1;
    }
  }
  if (tail)
    *tail = std::move(carry);
  else if (!carry.empty())
    f(std::string_view(carry));
  return true;
}

// A seal record received elsewhere (VerifyOptions::remote_seals).
struct RemoteSeal {
  size_t source = 0;     // index into VerifyOptions::remote_seals
  uint64_t line_no = 0;  // ... and the line it was read from
  uint64_t seq = 0;
  std::string prev;
  std::string time;
  int64_t time_ns = 0;
  std::string hash;  // SHA-256 (hex) of its canonical encoding: what the log line must be
  // Found while the log is read: the file holding a record with this seq and prev.
  std::optional<size_t> file;
  bool identical = false;  // ... and that record's line has exactly that hash
  // A forward-secure seal's signature is checked once the log's key chain is known.
  std::optional<uint64_t> epoch;
  std::string key_id, message, sig, next_pub;
};

class RemoteSeals {
 public:
  RemoteSeals(const VerifyOptions& opts, VerifyReport& rep) : opts_(opts), rep_(rep) {}

  bool load(size_t source) {
    const std::string& path = opts_.remote_seals[source];
    std::string err;
    uint64_t line_no = 0;
    bool good = true;
    bool readable = for_each_line(path, err, [&](std::string_view text) {
      ++line_no;
      good = line(source, line_no, text);
      return good;
    });
    if (!readable) return fail(std::nullopt, err);
    return good;
  }

  // Notes what the log holds at (file, seq): called for every record that verified, with
  // the hash of its line.
  void see(size_t file, uint64_t seq, const std::string& prev, const std::string& hash) {
    auto it = by_seq_.find(seq);
    if (it == by_seq_.end()) return;
    for (size_t i : it->second) {
      RemoteSeal& r = seals_[i];
      if (r.file || r.prev != prev) continue;
      r.file = file;
      r.identical = r.hash == hash;
    }
  }

  // FILE:LINE of a remote seal.
  std::string where(const RemoteSeal& r) const { return where(r.source, r.line_no); }

  bool active() const { return !seals_.empty(); }
  std::vector<RemoteSeal>& seals() { return seals_; }

  void add_notes() {
    if (rep_.remote_ignored > 0)
      rep_.notes.push_back(
          fmt::format("{} record(s) in the remote seal files are not seals and were ignored",
                      rep_.remote_ignored));
    if (duplicates_ > 0)
      rep_.notes.push_back(
          fmt::format("{} duplicate remote seal(s) were counted once", duplicates_));
    if (seals_.empty())
      rep_.notes.push_back("the remote seal files hold no seal records: nothing to compare");
  }

 private:
  bool fail(std::optional<uint64_t> seq, std::string msg) {
    rep_.bad_seq = seq;
    rep_.error = std::move(msg);
    return false;
  }

  std::string where(size_t source, uint64_t line_no) const {
    return fmt::format("{}:{}", opts_.remote_seals[source], line_no);
  }
  std::string here() const { return where(source_, line_no_); }  // the line being read

  bool line(size_t source, uint64_t line_no, std::string_view text) {
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) return true;  // blank
    source_ = source;
    line_no_ = line_no;
    auto v = json::parse(text);
    if (!v)
      return fail(std::nullopt, fmt::format("{}: not a JSON value (expected a seal record, a "
                                            "webhook item or a webhook batch): {}",
                                            here(), v.message()));
    if (v->is_array()) {
      for (const auto& item : v->as_array())
        if (!value(item, /*in_batch=*/true)) return false;
      return true;
    }
    return value(*v, /*in_batch=*/false);
  }

  bool value(const json::Value& v, bool in_batch) {
    const json::Object* o = v.if_object();
    if (!o)
      return fail(std::nullopt,
                  fmt::format("{}: {} is not an object (expected a seal record, a webhook item "
                              "or a webhook batch)",
                              here(), in_batch ? "an item of the batch" : "the value"));
    if (auto it = o->find("record"); it != o->end()) {
      if (!it->second.is_object())
        return fail(std::nullopt,
                    fmt::format("{}: the \"record\" of a webhook item is not an object", here()));
      o = &it->second.as_object();
    } else if (!json::get_string(*o, "type")) {
      return fail(std::nullopt, fmt::format("{}: neither a record (no \"type\") nor a webhook "
                                            "item (no \"record\")",
                                            here()));
    }
    const std::string* type = json::get_string(*o, "type");
    if (!type || *type != record::kSeal) {
      ++rep_.remote_ignored;
      return true;
    }
    return seal(*o);
  }

  bool seal(const json::Object& o) {
    const int64_t* seq = json::get_int(o, "seq");
    const std::string* prev = json::get_string(o, "prev");
    const std::string* time = json::get_string(o, "time");
    std::optional<int64_t> time_ns;
    if (time)
      if (auto t = record::parse_time(*time)) time_ns = *t;
    if (!seq || *seq < 1 || !prev || !is_hex64(*prev) || !time_ns)
      return fail(seq && *seq >= 1 ? std::optional<uint64_t>(*seq) : std::nullopt,
                  fmt::format("{}: remote seal lacks a valid seq, time or prev", here()));
    uint64_t s = static_cast<uint64_t>(*seq);
    std::string key_id;
    RemoteSeal r;
    const int64_t* ep = json::get_int(o, "epoch");
    const std::string* kid = json::get_string(o, "key_id");
    const std::string* sig_b64 = json::get_string(o, "sig");
    auto sig = sig_b64 ? crypto::base64_decode(*sig_b64) : Result<std::string>(make_error(""));
    if (ep) {
      if (*ep < 0 || !kid || !sig)
        return fail(s, fmt::format("{}: remote seal seq {}: lacks key_id or sig, or has a bad "
                                   "epoch",
                                   here(), s));
      r.epoch = static_cast<uint64_t>(*ep);
      r.key_id = *kid;
      r.message = record::seal_message(o);
      r.sig = *sig;
      if (const std::string* n = json::get_string(o, "next_pub_b64"))
        if (auto raw = crypto::base64_decode(*n)) r.next_pub = *raw;
    }
    switch (ep ? SealCheck::kOk : check_seal(o, opts_.keys, key_id)) {
      case SealCheck::kOk:
        break;
      case SealCheck::kMissing:
        return fail(s, fmt::format("{}: remote seal seq {}: lacks key_id or sig", here(), s));
      case SealCheck::kUnknownKey:
        return fail(s, fmt::format("{}: remote seal seq {}: unknown key {} (not among the given "
                                   "public keys)",
                                   here(), s, key_id));
      case SealCheck::kBadSignature:
        return fail(s, fmt::format("{}: remote seal seq {}: bad signature (it does not verify "
                                   "with key {})",
                                   here(), s, key_id));
    }
    r.hash = crypto::to_hex(crypto::sha256(json::encode(json::Value(o))));
    auto& same_seq = by_seq_[s];
    for (size_t i : same_seq)
      if (seals_[i].hash == r.hash) {
        ++duplicates_;
        return true;
      }
    r.source = source_;
    r.line_no = line_no_;
    r.seq = s;
    r.prev = *prev;
    r.time = *time;
    r.time_ns = *time_ns;
    same_seq.push_back(seals_.size());
    seals_.push_back(std::move(r));
    return true;
  }

  const VerifyOptions& opts_;
  VerifyReport& rep_;
  std::vector<RemoteSeal> seals_;
  std::unordered_map<uint64_t, std::vector<size_t>> by_seq_;
  uint64_t duplicates_ = 0;
  size_t source_ = 0;  // the line being read
  uint64_t line_no_ = 0;
};

class Verifier {
 public:
  Verifier(const VerifyOptions& opts, VerifyReport& rep, RemoteSeals* remote)
      : opts_(opts), rep_(rep), remote_(remote && remote->active() ? remote : nullptr) {}

  bool file(const std::string& path, size_t index, size_t count) {
    path_ = path;
    if (index == 0) first_path_ = path;
    file_index_ = index;
    line_no_ = 0;
    first_in_file_ = true;
    std::string err, carry;
    bool good = true;
    if (!for_each_line(
            path, err, [&](std::string_view l) { return good = line(l); }, &carry))
      return fail(std::nullopt, err);
    if (!good) return false;
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
    if (begins_after_hash_) {
      const std::string& first = files_.empty() ? first_path_ : files_.front().path;
      if (!retained_seq_)
        return fail(1, fmt::format("{} begins at a rotation after seq {} (chain hash {}) of an "
                                   "older file that was not given, and no retention record "
                                   "says shauditd removed it: the records up to that seq are "
                                   "missing (give the older files, oldest first)",
                                   first, *begins_after_seq_, *begins_after_hash_));
      rep_.notes.push_back(fmt::format(
          "{} begins at a rotation: the older files, up to seq {}, were removed by shauditd's "
          "retention (retention record seq {})",
          first, *begins_after_seq_, *retained_seq_));
      if (anchored_)
        rep_.notes.push_back(fmt::format(
            "the key chain is taken up at epoch {} from the rotate record of {}: the seals "
            "that certified that epoch's key were in the removed files, so KEY.pub does not "
            "vouch for it (compare it with a remote seal to be sure)",
            anchor_->second.first, first));
    }
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

  // After the log verified: every remote seal must be in it byte for byte. Reports the first
  // problem in chain order (file, then seq).
  bool check_remote() {
    if (!remote_) return true;
    if (!check_remote_epochs()) return false;
    struct Problem {
      size_t file;
      uint64_t seq;
      uint64_t bad_seq;
      std::string msg;
    };
    std::optional<Problem> first;
    std::optional<std::pair<size_t, uint64_t>> latest;
    uint64_t older = 0, newer = 0;
    for (const RemoteSeal& r : remote_->seals()) {
      if (r.file && r.identical) {
        ++rep_.remote_matched;
        if (!latest || std::make_pair(*r.file, r.seq) > *latest) {
          latest = std::make_pair(*r.file, r.seq);
          rep_.remote_latest_seq = r.seq;
          rep_.remote_latest_time = r.time;
        }
        continue;
      }
      size_t k;
      if (r.file) {
        k = *r.file;  // the same seq and prev, other bytes
      } else {
        // No record with its seq and prev: the file it belongs to by time.
        if (r.time_ns < files_.front().first_time_ns && files_.front().begins_at_rotation) {
          ++older;
          continue;
        }
        k = 0;
        for (size_t i = 0; i < files_.size(); ++i)
          if (files_[i].first_time_ns <= r.time_ns) k = i;
        const FileInfo& last = files_.back();
        if (k + 1 == files_.size() && last.ends_at_rotation && r.time_ns > last.last_time_ns) {
          ++newer;
          continue;
        }
      }
      const FileInfo& f = files_[k];
      Problem p{k, r.seq, r.seq, {}};
      if (!r.file && r.seq > f.last_seq) {
        p.bad_seq = f.last_seq + 1;
        p.msg = fmt::format(
            "log cut short: remote seal seq {} (time {}) is not in the log ({} ends at seq {})",
            r.seq, r.time, k + 1 == files_.size() ? "the log" : f.path, f.last_seq);
      } else {
        p.msg = fmt::format(
            "log rewritten: record seq {} differs from the remote seal received at {} "
            "(seq {}, time {}): {} line {} is not byte-identical to it",
            r.seq, remote_->where(r), r.seq, r.time, f.path, r.seq);
      }
      if (!first || std::tie(p.file, p.seq) < std::tie(first->file, first->seq))
        first = std::move(p);
    }
    if (older > 0)
      rep_.notes.push_back(
          fmt::format("{} remote seal(s) are older than {}, which begins at a rotation: their "
                      "files were removed by shauditd's retention",
                      older, files_.front().path));
    if (newer > 0)
      rep_.notes.push_back(fmt::format(
          "{} remote seal(s) are newer than {}, which ends with a rotation seal: not checked "
          "(the newer file was not given)",
          newer, files_.back().path));
    if (first) return fail(first->bad_seq, std::move(first->msg));
    return true;
  }

 private:
  bool fail(std::optional<uint64_t> seq, std::string msg) {
    rep_.bad_seq = seq;
    rep_.error = std::move(msg);
    if (!rep_.bad_epoch && current_epoch_) rep_.bad_epoch = current_epoch_;
    return false;
  }

  bool line(std::string_view text) {
    ++line_no_;
    uint64_t expect = first_in_file_ ? 1 : seq_ + 1;
    auto v = json::parse(text);
    if (!v || !v->is_object())
      return fail(expect,
                  fmt::format("{} line {}: seq {} (expected here) is not a valid record: {}", path_,
                              line_no_, expect, v ? "not a JSON object" : v.message()));
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
    auto time_ns = record::parse_time(*time);
    if (!time_ns)
      return fail(s, fmt::format("{} line {}: seq {} has an invalid time", path_, line_no_, s));
    auto hash = crypto::to_hex(crypto::sha256(text));
    if (first_in_file_) {
      if (file_index_ == 0) {
        if (*type == record::kStart && *prev == record::kGenesisPrev) {
          // the beginning of a chain
        } else if (*type == record::kRotate) {
          // The older files must be given, or removed by shauditd's retention: a retention
          // record further on must name the file this one continues (checked in finish()).
          begins_after_seq_ = json::get_int(o, "prev_seq") ? *json::get_int(o, "prev_seq") : 0;
          begins_after_hash_ = *prev;
          const std::string* kid = json::get_string(o, "key_id");
          const int64_t* ep = json::get_int(o, "epoch");
          const std::string* pub = json::get_string(o, "epoch_pub_b64");
          if (kid && ep && *ep >= 0 && pub)
            if (auto raw = crypto::base64_decode(*pub); raw && raw->size() == 32)
              anchor_ = {*kid, {static_cast<uint64_t>(*ep), *raw}};
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
      if (last_type_ == record::kSeal && last_reason_ == record::kSealClose &&
          *type != record::kStart)
        return fail(s, fmt::format("{} line {}: seq {} ({}) follows the closing seal at seq {}: a "
                                   "closing seal ends a run and only the start record of the "
                                   "next run may follow it: records were appended after it",
                                   path_, line_no_, s, *type, seq_));
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
    if (*type == record::kChainBreak) return chain_break(o, s);
    if (*type == record::kRetention && begins_after_hash_ && !retained_seq_) {
      if (auto it = o.find("removed"); it != o.end() && it->second.is_array())
        for (const auto& item : it->second.as_array()) {
          const json::Object* f = item.if_object();
          const int64_t* last_seq = f ? json::get_int(*f, "last_seq") : nullptr;
          const std::string* last_hash = f ? json::get_string(*f, "last_hash") : nullptr;
          if (last_seq && last_hash && *last_seq == *begins_after_seq_ &&
              *last_hash == *begins_after_hash_)
            retained_seq_ = s;
        }
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
    if (remote_) {
      if (first_in_file_) files_.push_back({path_, *time_ns, *type == record::kRotate});
      FileInfo& f = files_.back();
      f.last_seq = s;
      f.last_time_ns = *time_ns;
      f.ends_at_rotation = *type == record::kSeal && last_reason_ == record::kSealRotate;
      remote_->see(file_index_, s, *prev, hash);
    }
    last_type_ = *type;
    last_hash_ = std::move(hash);
    prev_path_ = path_;
    seq_ = s;
    first_in_file_ = false;
    ++rep_.records;
    return true;
  }

  // A chain_break record: shauditd found at its start a log other than the one it had left.
  bool chain_break(const json::Object& o, uint64_t s) {
    auto str = [&](std::string_view k) {
      const std::string* v = json::get_string(o, k);
      return v ? *v : std::string("?");
    };
    auto num = [&](std::string_view k) {
      const int64_t* v = json::get_int(o, k);
      return v ? std::to_string(*v) : std::string("?");
    };
    std::string found = str("found"), what;
    if (found == "missing")
      what = fmt::format(
          "the log it had written up to seq {} (chain hash {}) was missing: it was "
          "deleted or moved while shauditd was stopped",
          num("expected_seq"), str("expected_hash"));
    else if (found == "shorter")
      what = fmt::format(
          "the log ended at seq {}, but it had written up to seq {} (chain hash "
          "{}): records were cut off while shauditd was stopped",
          num("found_seq"), num("expected_seq"), str("expected_hash"));
    else if (found == "different")
      what = fmt::format(
          "the log ended at seq {} (chain hash {}), not at the seq {} (chain hash "
          "{}) it had written: the log was replaced or rewritten while shauditd "
          "was stopped",
          num("found_seq"), str("found_hash"), num("expected_seq"), str("expected_hash"));
    else if (found == "key_state")
      what = fmt::format(
          "its key state {} was at key epoch {}, but the log's last seal (seq {}) left the key "
          "chain at epoch {}: the key state was replaced or rolled back",
          str("key_state_file"), num("found_epoch"), num("seal_seq"), num("expected_epoch"));
    else if (found == "no_state")
      what = fmt::format(
          "its state file {} was missing or unreadable while the log existed: "
          "the log cannot be told unchanged",
          str("state_file"));
    else
      what = fmt::format("the log was not the one it had left (found: {})", found);
    return fail(s, fmt::format("{} line {}: seq {} is a chain_break record: when shauditd "
                               "started, {}",
                               path_, line_no_, s, what));
  }

  bool seal(const json::Object& o, uint64_t s) {
    const std::string* key_id = json::get_string(o, "key_id");
    auto chain = key_id ? chains_.find(*key_id) : chains_.end();
    if (json::get_int(o, "epoch")) return epoch_seal(o, s);
    if (chain != chains_.end())
      return fail(s, fmt::format("{} line {}: seal seq {} has no epoch, but the seals of key {} "
                                 "carry epochs since seq {}: a seal made without the key chain",
                                 path_, line_no_, s, *key_id, chain->second.first_seq));
    std::string id;
    switch (check_seal(o, opts_.keys, id)) {
      case SealCheck::kOk:
        return true;
      case SealCheck::kMissing:
        return fail(s,
                    fmt::format("{} line {}: seal seq {} lacks key_id or sig", path_, line_no_, s));
      case SealCheck::kUnknownKey:
        return fail(s, fmt::format("{} line {}: seal seq {} is signed by key {}, which is not "
                                   "among the given public keys",
                                   path_, line_no_, s, id));
      case SealCheck::kBadSignature:
        break;
    }
    return fail(s, fmt::format("{} line {}: seal seq {} has an invalid signature: the records "
                               "it covers were rewritten",
                               path_, line_no_, s));
  }

  // A forward-secure seal: signed by the key of its epoch, which is the given public key for
  // epoch 0 and, for each later epoch, the key the seal that ended the epoch before certified
  // (next_pub_b64). Epochs only go forward, one at a time.
  bool epoch_seal(const json::Object& o, uint64_t s) {
    const std::string* key_id = json::get_string(o, "key_id");
    const std::string* sig_b64 = json::get_string(o, "sig");
    const int64_t* ep = json::get_int(o, "epoch");
    const int64_t* first = json::get_int(o, "first_seq");
    if (!key_id || !sig_b64 || *ep < 0)
      return fail(s, fmt::format("{} line {}: seal seq {} lacks key_id or sig, or has a bad "
                                 "epoch",
                                 path_, line_no_, s));
    uint64_t e = static_cast<uint64_t>(*ep);
    rep_.bad_epoch = e;
    std::string covers = first && *first >= 1 && static_cast<uint64_t>(*first) < s
                             ? fmt::format("seq {} to {}", *first, s - 1)
                             : std::string("no record");
    auto it = chains_.find(*key_id);
    if (it == chains_.end()) {
      const crypto::VerifyKey* root = nullptr;
      for (const auto& k : opts_.keys)
        if (k.key_id() == *key_id) root = &k;
      if (!root)
        return fail(s, fmt::format("{} line {}: seal seq {} is signed by key {}, which is not "
                                   "among the given public keys (key epoch {})",
                                   path_, line_no_, s, *key_id, e));
      Chain c;
      c.first_seq = s;
      if (begins_after_hash_ && anchor_ && anchor_->first == *key_id) {
        // The set begins after files that retention removed: the chain is taken up at the
        // epoch the rotate record names (see finish()'s note).
        c.epoch = anchor_->second.first;
        c.pub = anchor_->second.second;
        anchored_ = true;
      } else {
        c.epoch = 0;
        c.pub = root->raw();
      }
      c.first_epoch = c.epoch;
      it = chains_.emplace(*key_id, std::move(c)).first;
    }
    Chain& c = it->second;
    std::string pub;
    if (c.next && e == c.epoch + 1) {
      pub = *c.next;
    } else if (!c.next && e == c.epoch) {
      pub = c.pub;
    } else {
      std::string at = c.next ? fmt::format("epoch {} (epoch {} was certified by seal seq {})",
                                            c.epoch, c.epoch + 1, c.certified_seq)
                              : fmt::format("epoch {}", c.epoch);
      return fail(s, fmt::format("{} line {}: seal seq {} claims key epoch {}, but key {}'s "
                                 "chain is at {}: its key was not certified by the seal before "
                                 "it (a forged seal, a log cut and sealed again, or a piece of "
                                 "another log); it covers {}",
                                 path_, line_no_, s, e, *key_id, at, covers));
    }
    auto sig = crypto::base64_decode(*sig_b64);
    auto vk = crypto::VerifyKey::from_raw(pub);
    if (!sig || !vk || !vk->verify(record::seal_message(o), *sig))
      return fail(s, fmt::format("{} line {}: seal seq {} has an invalid signature: the records "
                                 "it covers were rewritten ({}, key epoch {}), or it was signed "
                                 "by a key other than epoch {}'s",
                                 path_, line_no_, s, covers, e, e));
    if (e != c.epoch) {
      c.epoch = e;
      c.pub = std::move(pub);
      c.next.reset();
    }
    epochs_[{*key_id, c.epoch}] = c.pub;
    if (const std::string* n = json::get_string(o, "next_pub_b64")) {
      auto raw = crypto::base64_decode(*n);
      if (!raw || raw->size() != 32 || !crypto::VerifyKey::from_raw(*raw))
        return fail(s, fmt::format("{} line {}: seal seq {} (key epoch {}) certifies an invalid "
                                   "next key",
                                   path_, line_no_, s, e));
      c.next = std::move(*raw);
      c.certified_seq = s;
      epochs_[{*key_id, c.epoch + 1}] = *c.next;
    }
    if (!rep_.first_epoch) rep_.first_epoch = c.first_epoch;
    rep_.last_epoch = c.epoch;
    current_epoch_ = c.next ? c.epoch + 1 : c.epoch;
    rep_.bad_epoch.reset();
    return true;
  }

  // The signatures of remote forward-secure seals: each with its epoch's key from the log's
  // key chain, or, past the log's end, from the certifications of the remote seals before it.
  bool check_remote_epochs() {
    std::vector<const RemoteSeal*> todo;
    for (const RemoteSeal& r : remote_->seals())
      if (r.epoch) todo.push_back(&r);
    std::sort(todo.begin(), todo.end(), [](const RemoteSeal* a, const RemoteSeal* b) {
      return std::tie(a->key_id, *a->epoch, a->seq) < std::tie(b->key_id, *b->epoch, b->seq);
    });
    auto known = epochs_;
    for (const RemoteSeal* r : todo) {
      auto it = known.find({r->key_id, *r->epoch});
      if (it == known.end()) {
        rep_.bad_epoch = *r->epoch;
        return fail(r->seq, fmt::format("{}: remote seal seq {} (key epoch {}) is signed by a key "
                                        "the log's key chain of key {} does not reach",
                                        remote_->where(*r), r->seq, *r->epoch, r->key_id));
      }
      auto vk = crypto::VerifyKey::from_raw(it->second);
      if (!vk || !vk->verify(r->message, r->sig)) {
        rep_.bad_epoch = *r->epoch;
        return fail(r->seq, fmt::format("{}: remote seal seq {}: bad signature (it does not verify "
                                        "with the key of epoch {} of key {})",
                                        remote_->where(*r), r->seq, *r->epoch, r->key_id));
      }
      if (r->next_pub.size() == 32) known.insert({{r->key_id, *r->epoch + 1}, r->next_pub});
    }
    return true;
  }

  // What the remote seal check needs to know about each file of the set.
  struct FileInfo {
    std::string path;
    int64_t first_time_ns = 0;
    bool begins_at_rotation = false;
    uint64_t last_seq = 0;
    int64_t last_time_ns = 0;
    bool ends_at_rotation = false;
  };

  const VerifyOptions& opts_;
  VerifyReport& rep_;
  RemoteSeals* remote_;
  std::vector<FileInfo> files_;
  std::string path_, prev_path_;
  size_t file_index_ = 0;
  uint64_t line_no_ = 0;
  bool first_in_file_ = true;
  uint64_t seq_ = 0;
  uint64_t unsealed_ = 0;
  std::string last_hash_;
  std::string last_type_;
  std::string last_reason_;
  std::string first_path_;  // the first file given
  // The first file begins at a rotation after this seq and chain hash of an older file...
  std::optional<int64_t> begins_after_seq_;
  std::optional<std::string> begins_after_hash_;
  std::optional<uint64_t> retained_seq_;  // ... which the retention record at this seq names

  // Forward-secure sealing: each key's chain of epochs.
  struct Chain {
    uint64_t epoch = 0, first_epoch = 0;
    std::string pub;                  // the key of `epoch`
    std::optional<std::string> next;  // the key of epoch + 1, once a seal certified it
    uint64_t certified_seq = 0, first_seq = 0;
  };
  std::unordered_map<std::string, Chain> chains_;
  std::optional<uint64_t> current_epoch_;  // the epoch of the records being read
  // (key id, epoch) -> public key, for every epoch the log's seals went through or certified.
  std::map<std::pair<std::string, uint64_t>, std::string> epochs_;
  // The first file begins at a rotation: the key id and (epoch, public key) its rotate record
  // names, where the chain is taken up when the older files are not given.
  std::optional<std::pair<std::string, std::pair<uint64_t, std::string>>> anchor_;
  bool anchored_ = false;

 public:
  const std::map<std::pair<std::string, uint64_t>, std::string>& epochs() const { return epochs_; }
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
  RemoteSeals remote(opts, rep);
  for (size_t i = 0; i < opts.remote_seals.size(); ++i)
    if (!remote.load(i)) return rep;
  if (!opts.remote_seals.empty()) remote.add_notes();
  Verifier v(opts, rep, &remote);
  for (size_t i = 0; i < paths.size(); ++i)
    if (!v.file(paths[i], i, paths.size())) return rep;
  rep.ok = v.finish(paths.size()) && v.check_remote();
  return rep;
}

}  // namespace shaudit
