// SPDX-License-Identifier: Apache-2.0
// The wrapper's settings: a YAML mapping, read strictly (an unknown key or a bad value is an
// error naming the key, file, line and column).
#pragma once

#include <string>

#include "shaudit/result.h"

namespace shaudit::oci {

// Where the settings are when $SHAUDIT_OCI_CONFIG is not set.
inline constexpr const char* kDefaultSettingsPath = "/etc/shaudit/oci-runtime.yaml";

enum class Mode {
  kAll,    // every container, except those annotated shaudit.io/audit: "false"
  kOptIn,  // only containers annotated shaudit.io/audit: "true"
};

struct Settings {
  std::string runtime;       // the real runtime (required)
  std::string socket;        // shauditd's socket on the host
  std::string preload;       // the interposer for glibc images, on the host
  std::string preload_musl;  // the interposer for musl images; empty: those are not preloaded
  Mode mode = Mode::kAll;
  std::string state_dir;  // generated ld.so.preload files
};

Settings default_settings();  // everything but `runtime`
Result<Settings> parse_settings(const std::string& yaml, const std::string& source);
Result<Settings> load_settings(const std::string& path);

// The `runtime` of a settings file that load_settings refuses for another reason (an
// unknown key, a bad mode): the real runtime is still the one the operator named. Empty when
// the file cannot be read or parsed as YAML, or its `runtime` is not an absolute path.
std::string runtime_of_broken_settings(const std::string& path);

}  // namespace shaudit::oci
