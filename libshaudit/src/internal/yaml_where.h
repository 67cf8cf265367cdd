// SPDX-License-Identifier: Apache-2.0
// Where a YAML node is, for error messages: "FILE:LINE:COLUMN" (1-based), or FILE alone when
// the mark has no position.
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <string>

namespace shaudit::internal {

inline std::string yaml_where(const std::string& file, const YAML::Mark& m) {
  if (m.line < 0) return file;
  return fmt::format("{}:{}:{}", file, m.line + 1, m.column + 1);
}

}  // namespace shaudit::internal
