#include "shaudit/config.h"
#include "shaudit/redact.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

namespace shaudit {

const char* const kDefaultConfigYaml = R"(# shauditd default configuration (compiled in)
socket: /run/shaudit/shaudit.sock
socket_mode: "0666"
control_socket: /run/shaudit/control.sock
log: /var/log/shaudit/audit.jsonl
signing_key: /etc/shaudit/signing.key
bpf: auto
seal_interval_ms: 100
seal_every: 10000
queue_capacity: 65536
max_clients: 4096
shutdown_timeout_ms: 10000
bpf_ringbuf_kib: 8192
crosscheck_window_ms: 1000
receiver_batch_us: 500
unhooked_allowlist: []
rules: []
redact_patterns: []
)";

const char* bpf_mode_name(BpfMode m) {
  switch (m) {
    case BpfMode::kOff:
      return "off";
    case BpfMode::kOn:
      return "on";
    case BpfMode::kAuto:
      return "auto";
  }
  return "?";
}

namespace {

std::string where(const std::string& source, const YAML::Mark& m) {
  if (m.line < 0) return source;
  return fmt::format("{}:{}:{}", source, m.line + 1, m.column + 1);
}

using Setter = std::function<std::string(const std::string& scalar, Config&)>;

std::string as_uint(const std::string& s, uint64_t min, uint64_t max, uint64_t& out) {
  if (s.empty()) return "expected a whole number";
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return fmt::format("expected a whole number, got '{}'", s);
    if (v > (UINT64_MAX - 9) / 10) return "number too large";
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v < min || v > max) return fmt::format("{} is out of range ({}..{})", v, min, max);
  out = v;
  return {};
}

Setter uint_key(uint64_t Config::*field, uint64_t min, uint64_t max) {
  return [=](const std::string& s, Config& c) { return as_uint(s, min, max, c.*field); };
}

Setter path_key(std::string Config::*field) {
  return [=](const std::string& s, Config& c) -> std::string {
    if (s.empty() || s[0] != '/') return fmt::format("expected an absolute path, got '{}'", s);
    c.*field = s;
    return {};
  };
}

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> m = {
      {"socket", path_key(&Config::socket)},
      {"control_socket", path_key(&Config::control_socket)},
      {"log", path_key(&Config::log)},
      {"signing_key", path_key(&Config::signing_key)},
      {"socket_group",
       [](const std::string& s, Config& c) -> std::string {
         c.socket_group = s;
         return {};
       }},
      {"socket_mode",
       [](const std::string& s, Config& c) -> std::string {
         if (s.empty() || s.size() > 4) return fmt::format("expected an octal mode like \"0666\", got '{}'", s);
         unsigned v = 0;
         for (char ch : s) {
           if (ch < '0' || ch > '7') return fmt::format("expected an octal mode like \"0666\", got '{}'", s);
           v = v * 8 + static_cast<unsigned>(ch - '0');
         }
         if (v > 0777) return fmt::format("mode {} has bits beyond 0777", s);
         c.socket_mode = v;
         return {};
       }},
      {"bpf",
       [](const std::string& s, Config& c) -> std::string {
         if (s == "on" || s == "true")
           c.bpf = BpfMode::kOn;
         else if (s == "off" || s == "false")
           c.bpf = BpfMode::kOff;
         else if (s == "auto")
           c.bpf = BpfMode::kAuto;
         else
           return fmt::format("expected on, off or auto, got '{}'", s);
         return {};
       }},
      {"seal_interval_ms", uint_key(&Config::seal_interval_ms, 1, 60000)},
      {"seal_every", uint_key(&Config::seal_every, 1, 10000000)},
      {"queue_capacity", uint_key(&Config::queue_capacity, 16, 100000000)},
      {"max_clients", uint_key(&Config::max_clients, 1, 1000000)},
      {"shutdown_timeout_ms", uint_key(&Config::shutdown_timeout_ms, 0, 3600000)},
      {"bpf_ringbuf_kib",
       [](const std::string& s, Config& c) -> std::string {
         uint64_t v;
         std::string err = as_uint(s, 4, 1048576, v);
         if (!err.empty()) return err;
         if (v & (v - 1)) return fmt::format("{} is not a power of two", v);
         c.bpf_ringbuf_kib = v;
         return {};
       }},
      {"crosscheck_window_ms", uint_key(&Config::crosscheck_window_ms, 10, 60000)},
      {"receiver_batch_us", uint_key(&Config::receiver_batch_us, 0, 10000)},
      {"unhooked_allowlist", nullptr},  // lists: handled in parse_config
      {"rules", nullptr},
      {"redact_patterns", nullptr},
  };
  return m;
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
  Config c;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("config {}: {}", where(source, e.mark), e.msg));
  }
  if (root.IsNull()) return c;  // an empty file: all defaults
  if (!root.IsMap())
    return make_error(fmt::format("config {}: expected a mapping of keys to values",
                                  where(source, root.Mark())));
  std::map<std::string, YAML::Mark> seen;  // key -> where it was first set
  try {
    for (const auto& kv : root) {
      if (!kv.first.IsScalar())
        return make_error(fmt::format("config {}: keys must be plain names",
                                      where(source, kv.first.Mark())));
      std::string key = kv.first.Scalar();
      auto it = setters().find(key);
      if (it == setters().end()) {
        std::string known;
        for (const auto& [k, _] : setters()) known += (known.empty() ? "" : ", ") + k;
        return make_error(fmt::format("config {}: unknown key '{}' (known keys: {})",
                                      where(source, kv.first.Mark()), key, known));
      }
      auto [first, inserted] = seen.emplace(key, kv.first.Mark());
      if (!inserted)
        return make_error(fmt::format("config {}: duplicate key '{}' (first set at {})",
                                      where(source, kv.first.Mark()), key,
                                      where(source, first->second)));
      if (key == "redact_patterns") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key '{}' needs a list of regular expressions",
                                        where(source, kv.second.Mark()), key));
        for (const auto& item : kv.second) {
          if (!item.IsScalar() || item.Scalar().empty())
            return make_error(fmt::format("config {}: key '{}': expected a regular expression",
                                          where(source, item.Mark()), key));
          if (auto r = Redactor::make({item.Scalar()}); !r)
            return make_error(fmt::format("config {}: key '{}': {}", where(source, item.Mark()),
                                          key, r.message()));
          c.redact_patterns.push_back(item.Scalar());
        }
        continue;
      }
      if (key == "unhooked_allowlist" || key == "rules") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key '{}' needs a list of absolute paths",
                                        where(source, kv.second.Mark()), key));
        auto& out = key == "rules" ? c.rules : c.unhooked_allowlist;
        for (const auto& item : kv.second) {
          if (!item.IsScalar() || item.Scalar().empty() || item.Scalar()[0] != '/')
            return make_error(fmt::format("config {}: key '{}': expected an absolute path",
                                          where(source, item.Mark()), key));
          out.push_back(item.Scalar());
        }
        continue;
      }
      if (!kv.second.IsScalar())
        return make_error(fmt::format("config {}: key '{}' needs a single value, not a {}",
                                      where(source, kv.second.Mark()), key,
                                      kv.second.IsMap() ? "mapping" : kv.second.IsSequence() ? "list" : "null"));
      std::string err = it->second(kv.second.Scalar(), c);
      if (!err.empty())
        return make_error(
            fmt::format("config {}: key '{}': {}", where(source, kv.second.Mark()), key, err));
    }
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("config {}: {}", where(source, e.mark), e.msg));
  }
  return c;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(fmt::format("config {}: cannot open: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace shaudit
