// SPDX-License-Identifier: Apache-2.0
// Forward-secure sealing keys: one Ed25519 key pair per epoch, each epoch's public key
// certified by a seal signed with the key of the epoch before it, the outgoing private key
// erased. Epoch 0 is the key `shaudit keygen` wrote (its KEY.pub is what verifiers keep).
//
// The key state file (shauditd's <state_dir>/key-state, mode 0600, 256 bytes, overwritten in
// place and fsync'd, never renamed):
//   0   8  magic "SHAKST01"
//   8  32  the epoch-0 public key (the chain's root: its key id is the log's key_id)
//   40 24  zero
//   64 96  slot A   } each: epoch (u64, little endian), private key (32, RFC 8032 seed),
//   160 96 slot B   } public key (32), check (16: the first 16 bytes of SHA-256 over
//                     "shaudit-key-state-v1\n" | root public | epoch | private | public),
//                     zero (8). An erased slot is all zero.
// One valid slot: the current epoch. Two (epochs e and e+1): a seal certifying e+1 was being
// written when shauditd stopped; the log says whether it was (settle()).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "shaudit/crypto.h"
#include "shaudit/result.h"

namespace shaudit {

class KeyState {
 public:
  // Opens the key state at state_path. When it does not exist, or the key file at key_path
  // holds a private key other than its epoch-0 key (a new key from `shaudit keygen`), creates
  // it from that key as epoch 0 and then erases the private key from key_path (overwritten
  // in place with zeros, fsync'd, then replaced by a note naming the state file). A key file
  // that is such a note, or missing, is fine while the state exists. A key file that cannot
  // be erased (a read-only mount, such as a Kubernetes Secret) is kept, and said so by
  // key_file_kept(): forward security then holds only against who cannot read that file.
  static Result<std::unique_ptr<KeyState>> open(const std::string& key_path,
                                                const std::string& state_path);
  ~KeyState();
  KeyState(const KeyState&) = delete;
  KeyState& operator=(const KeyState&) = delete;

  uint64_t epoch() const { return epoch_; }
  const crypto::SigningKey& key() const { return *key_; }
  const std::string& public_raw() const { return pub_; }
  const std::string& root_public_raw() const { return root_pub_; }
  const std::string& root_key_id() const { return root_id_; }
  const std::string& path() const { return path_; }
  // Why the signing key file still holds the epoch-0 private key ("" when it does not).
  const std::string& key_file_kept() const { return key_kept_; }
  // True right after open() when the file held two keys (see settle()).
  bool pending() const { return next_key_.has_value(); }
  // The public key of the pending next epoch ("" when none).
  const std::string& pending_public_raw() const { return next_pub_; }

  // A state left with two keys: `certified_pub` is the public key the log's last seal
  // certified ("" when none). When it is the pending key, that key becomes current (and the
  // older one is erased); otherwise the pending key is erased.
  Result<void> settle(std::string_view certified_pub);

  // Evolution, around the seal that certifies the next key: prepare_next() makes the next
  // epoch's key and writes it into the free slot (fsync'd) next to the current one, and
  // returns its public key; commit_next() makes it current and erases the outgoing key from
  // the file (overwritten, fsync'd) and from memory; abandon_next() erases the prepared key
  // when its seal was not written.
  Result<std::string> prepare_next();
  Result<void> commit_next();
  Result<void> abandon_next();

  // Reads the epoch-0 public key id and current epoch of a key state file without keeping it
  // open (for `shaudit` and checks). nullopt when the file does not exist.
  struct Summary {
    std::string root_key_id;
    uint64_t epoch = 0;
    bool pending = false;
  };
  static Result<std::optional<Summary>> inspect(const std::string& state_path);

 private:
  KeyState() = default;
  Result<void> write_slot(int slot, uint64_t epoch, const crypto::SigningKey* key);
  Result<void> sync();

  std::string path_;
  std::string key_kept_;
  int fd_ = -1;
  std::string root_pub_, root_id_;
  uint64_t epoch_ = 0;
  int slot_ = 0;  // the slot holding the current key
  std::optional<crypto::SigningKey> key_;
  std::string pub_;
  std::optional<crypto::SigningKey> next_key_;
  std::string next_pub_;
};

// The note shauditd leaves in the key file once its private key moved into a key state.
inline constexpr std::string_view kConsumedKeyMarker = "# shaudit: signing key moved";

}  // namespace shaudit
