// SPDX-License-Identifier: Apache-2.0
// The edit of an OCI bundle before `create`/`run`: the interposer, $LD_PRELOAD naming it and
// (glibc) a generated /etc/ld.so.preload, so the programs in the container load it and it is
// active there; shauditd's socket directory with $SHAUDIT_SOCKET, so it reports there; and
// annotations saying what was done.
#pragma once

#include <string>

#include "settings.h"
#include "shaudit/result.h"

namespace shaudit::oci {

// Where things are inside a container.
inline constexpr const char* kInterposerInContainer = "/usr/lib/shaudit/libshaudit_preload.so";
inline constexpr const char* kSocketDirInContainer = "/run/shaudit";

inline constexpr const char* kAuditAnnotation = "shaudit.io/audit";
inline constexpr const char* kInterposerAnnotation = "shaudit.io/interposer";
inline constexpr const char* kReasonAnnotation = "shaudit.io/reason";

struct Outcome {
  enum class Kind {
    kPreloaded,     // config.json edited; shaudit.io/interposer: glibc or musl
    kNotPreloaded,  // config.json edited (socket, annotations); shaudit.io/interposer: none
    kUntouched,     // opted out, or not opted in: config.json as it was
  };
  Kind kind = Kind::kUntouched;
  std::string note;  // a line for stderr, without the program's prefix; empty: nothing to say
};

// Edits BUNDLE/config.json for container `id`. On error the bundle is as it was (a generated
// ld.so.preload may have been left in the state directory).
Result<Outcome> prepare_bundle(const Settings& s, const std::string& bundle, const std::string& id);

// Before `runc exec --process FILE` in container `id`: containerd's shim (and so `kubectl exec`,
// `docker exec`, `ctr task exec`) writes FILE from its own copy of the container's spec, not
// from config.json, so the process would lack what prepare_bundle added to the environment.
// For a container prepare_bundle prepared (its bundle, named by runc's state
// RUNC_ROOT/ID/state.json, has a config.json annotated shaudit.io/interposer), adds the same
// to FILE: the container's $SHAUDIT_SOCKET unless FILE sets one, and (glibc, musl) the
// interposer at the front of $LD_PRELOAD. FILE is replaced atomically with its mode and owner.
// false: nothing to do (not such a container, or FILE has both already); an error only for
// such a container whose FILE could not be edited (it is as it was).
Result<bool> prepare_exec(const std::string& runc_root, const std::string& id,
                          const std::string& process_file);

// runc's --root when none is given (as root).
inline constexpr const char* kRuncDefaultRoot = "/run/runc";

// The generated ld.so.preload of container id (when its image had one of its own).
std::string container_preload_file(const Settings& s, const std::string& id);

// runc's rule for container ids: [A-Za-z0-9_+.-]+, not "." or "..".
bool valid_container_id(std::string_view id);

}  // namespace shaudit::oci
