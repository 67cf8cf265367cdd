// SPDX-License-Identifier: Apache-2.0
#include "shaudit/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "internal/yaml_where.h"
#include "shaudit/redact.h"
#include "shaudit/rules.h"
#include "shaudit/wire.h"

namespace shaudit {

const char* const kDefaultInterposer = SHAUDIT_DEFAULT_INTERPOSER;

const char* const kDefaultConfigYaml = R"(# shauditd default configuration (compiled in)
socket: )" SHAUDIT_DEFAULT_SOCKET R"(
socket_mode: "0666"
control_socket: /run/shaudit/control.sock
log: /var/log/shaudit/audit.jsonl
signing_key: /etc/shaudit/signing.key
bpf: auto
seal_interval_ms: 100
seal_every: 10000
forward_secure: true
seal_epoch_s: 60
queue_capacity: 65536
max_clients: 4096
shutdown_timeout_ms: 10000
bpf_ringbuf_kib: 8192
crosscheck_window_ms: 1000
receiver_batch_us: 500
client_queue_quota: 512
client_queue_bytes: 1048576
max_clients_per_uid: 256
interposer: )" SHAUDIT_DEFAULT_INTERPOSER R"(
unhooked_allowlist: []
container_state_dirs: [/run/runc, /run/containerd/runc]
rules: []
redact_patterns: []
state_dir: /var/lib/shaudit
retention: {max_age_days: 0, max_total_mib: 0}
enforce: false
outputs: []
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

// The output types: the name `type:` takes (the unknown-type message lists them in this
// order), the key a type cannot do without, and whether it ships seal records unless told
// (not into a chat channel).
struct OutputTypeInfo {
  OutputType type;
  const char* name;
  const char* needs = nullptr;  // nullptr: no key is required
  std::string OutputConfig::*needs_field = nullptr;
  bool seals = true;
};

const OutputTypeInfo kOutputTypes[] = {
    {OutputType::kFile, "file", "path", &OutputConfig::path},
    {OutputType::kStdout, "stdout"},
    {OutputType::kSyslog, "syslog", "address", &OutputConfig::address},
    {OutputType::kAuditd, "auditd"},
    {OutputType::kSlack, "slack", "url", &OutputConfig::url, /*seals=*/false},
    {OutputType::kLoki, "loki", "url", &OutputConfig::url},
    {OutputType::kWebhook, "webhook", "url", &OutputConfig::url},
    // (falcosidekick forwards every event to each of its destinations: seals would be noise)
    {OutputType::kFalcosidekick, "falcosidekick", "url", &OutputConfig::url, /*seals=*/false},
    {OutputType::kOtlp, "otlp", "url", &OutputConfig::url},
};

const OutputTypeInfo* output_type_info(OutputType t) {
  for (const auto& i : kOutputTypes)
    if (i.type == t) return &i;
  return nullptr;
}

}  // namespace

const char* output_type_name(OutputType t) {
  const OutputTypeInfo* i = output_type_info(t);
  return i ? i->name : "?";
}

bool output_is_remote(OutputType t) {
  return t != OutputType::kFile && t != OutputType::kStdout;
}

namespace {

using internal::yaml_where;

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

std::string as_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "yes" || s == "on") {
    out = true;
    return {};
  }
  if (s == "false" || s == "no" || s == "off") {
    out = false;
    return {};
  }
  return fmt::format("expected true or false, got '{}'", s);
}

// A key's setter for a single value: sets the field of C, or says what is wrong with the value
// (empty: nothing).
template <class C>
using ValueSetter = std::function<std::string(const std::string& scalar, C&)>;

template <class C>
ValueSetter<C> uint_key(uint64_t C::*field, uint64_t min, uint64_t max) {
  return [=](const std::string& s, C& c) { return as_uint(s, min, max, c.*field); };
}

template <class C>
ValueSetter<C> bool_key(bool C::*field) {
  return [=](const std::string& s, C& c) { return as_bool(s, c.*field); };
}

template <class C>
ValueSetter<C> path_key(std::string C::*field) {
  return [=](const std::string& s, C& c) -> std::string {
    if (s.empty() || s[0] != '/') return fmt::format("expected an absolute path, got '{}'", s);
    c.*field = s;
    return {};
  };
}

template <class C>
ValueSetter<C> text_key(std::string C::*field) {
  return [=](const std::string& s, C& c) -> std::string {
    c.*field = s;
    return {};
  };
}

using Setter = ValueSetter<Config>;

const std::map<std::string, Setter>& setters() {
  static const std::map<std::string, Setter> m = {
      {"socket", path_key(&Config::socket)},
      {"control_socket", path_key(&Config::control_socket)},
      {"log", path_key(&Config::log)},
      {"signing_key", path_key(&Config::signing_key)},
      {"socket_group", text_key(&Config::socket_group)},
      {"socket_mode",
       [](const std::string& s, Config& c) -> std::string {
         if (s.empty() || s.size() > 4)
           return fmt::format("expected an octal mode like \"0666\", got '{}'", s);
         unsigned v = 0;
         for (char ch : s) {
           if (ch < '0' || ch > '7')
             return fmt::format("expected an octal mode like \"0666\", got '{}'", s);
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
      {"forward_secure", bool_key(&Config::forward_secure)},
      {"seal_epoch_s", uint_key(&Config::seal_epoch_s, 0, 86400)},
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
      {"client_queue_quota", uint_key(&Config::client_queue_quota, 0, 100000000)},
      {"client_queue_bytes", uint_key(&Config::client_queue_bytes, 0, 1ull << 40)},
      {"max_clients_per_uid", uint_key(&Config::max_clients_per_uid, 1, 1000000)},
      {"interposer", path_key(&Config::interposer)},
      {"unhooked_allowlist", nullptr},  // lists: handled in parse_config
      {"container_state_dirs", nullptr},
      {"rules", nullptr},
      {"redact_patterns", nullptr},
      {"outputs", nullptr},
      {"state_dir", path_key(&Config::state_dir)},
      {"retention", nullptr},  // a mapping: handled in parse_config
      {"enforce", nullptr},    // a boolean or a mapping: handled in parse_config
  };
  return m;
}

// The output names taken so far in `outputs:` (they must be unique) and where each was set.
using OutputNames = std::map<std::string, YAML::Mark>;

// What is wrong with a key of an output: the message (it follows "outputs: ") and the place
// it names.
struct OutputProblem {
  YAML::Mark at;
  std::string message;
};

// A key of an output as a node setter sees it.
struct OutputKeyValue {
  const YAML::Node& value;
  const std::string& source;  // the config's file name, for messages
  OutputNames& names;
};

// How one key of an output is read. `single`: the value must be a scalar ("key 'K' needs a
// single value" otherwise). Then `scalar` sets the field or says what is wrong with the value,
// reported as "key 'K': <what>" at the value; or `node` reads the value itself (a list, a
// mapping) and words and places its own messages.
struct OutputKey {
  ValueSetter<OutputConfig> scalar = nullptr;
  std::function<std::optional<OutputProblem>(const OutputKeyValue&, OutputConfig&)> node = nullptr;
  bool single = true;
};

std::optional<OutputProblem> set_output_name(const OutputKeyValue& kv, OutputConfig& o) {
  const std::string& s = kv.value.Scalar();
  const YAML::Mark at = kv.value.Mark();
  if (s.empty() || s.size() > 64 ||
      s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
          std::string::npos ||
      s[0] == '.')
    return OutputProblem{
        at,
        fmt::format("name '{}': use 1-64 of A-Z a-z 0-9 _ . - (it names the spool directory)", s)};
  auto [it, fresh] = kv.names.emplace(s, at);
  if (!fresh)
    return OutputProblem{at, fmt::format("duplicate output name '{}' (first at {})", s,
                                         yaml_where(kv.source, it->second))};
  o.name = s;
  return std::nullopt;
}

std::optional<OutputProblem> set_output_type(const OutputKeyValue& kv, OutputConfig& o) {
  const std::string& s = kv.value.Scalar();
  std::string known;
  for (const auto& t : kOutputTypes) {
    if (s == t.name) {
      o.type = t.type;
      return std::nullopt;
    }
    known += (known.empty() ? "" : ", ") + std::string(t.name);
  }
  return OutputProblem{kv.value.Mark(), fmt::format("unknown type '{}' ({})", s, known)};
}

std::optional<OutputProblem> set_output_headers(const OutputKeyValue& kv, OutputConfig& o) {
  if (!kv.value.IsMap())
    return OutputProblem{kv.value.Mark(), "'headers' needs a mapping of header names to values"};
  for (const auto& h : kv.value) {
    if (!h.first.IsScalar() || !h.second.IsScalar() || h.first.Scalar().empty())
      return OutputProblem{h.first.Mark(), "'headers': each header is NAME: VALUE"};
    const std::string& hn = h.first.Scalar();
    const std::string& hv = h.second.Scalar();
    if (hn.find_first_of(": \r\n") != std::string::npos ||
        hv.find_first_of("\r\n") != std::string::npos)
      return OutputProblem{h.first.Mark(), fmt::format("'headers': invalid header '{}'", hn)};
    o.headers.emplace_back(hn, hv);
  }
  return std::nullopt;
}

std::optional<OutputProblem> set_output_labels(const OutputKeyValue& kv, OutputConfig& o) {
  if (!kv.value.IsSequence())
    return OutputProblem{kv.value.Mark(), "'labels' needs a list of record field names"};
  o.labels.clear();
  for (const auto& item : kv.value) {
    if (!item.IsScalar() || item.Scalar().empty())
      return OutputProblem{item.Mark(), "'labels': expected a field name"};
    o.labels.push_back(item.Scalar());
  }
  return std::nullopt;
}

// The keys of an output. Every type takes every key (the README's table says which apply to
// which); `type` decides what is required afterwards (kOutputTypes).
const std::map<std::string, OutputKey>& output_keys() {
  static const std::map<std::string, OutputKey> m = {
      {"name", {.node = set_output_name}},
      {"type", {.node = set_output_type}},
      {"enabled", {.scalar = bool_key(&OutputConfig::enabled)}},
      {"seals", {.scalar = bool_key(&OutputConfig::seals)}},
      {"events", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         if (s == "alerts")
           o.events = OutputEvents::kAlerts;
         else if (s == "records")
           o.events = OutputEvents::kRecords;
         else
           return fmt::format("expected alerts or records, got '{}'", s);
         return {};
       }}},
      {"minimum_priority", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         auto p = rules::parse_priority(s);
         if (!p)
           return fmt::format(
               "unknown priority '{}' (emergency, alert, critical, error, warning, notice, "
               "informational, debug)",
               s);
         o.minimum_priority = rules::priority_name(*p);
         return {};
       }}},
      // file
      {"path", {.scalar = path_key(&OutputConfig::path)}},
      // HTTP outputs
      {"url", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0)
           return fmt::format("expected an http:// or https:// URL, got '{}'", s);
         o.url = s;
         return {};
       }}},
      {"headers", {.node = set_output_headers, .single = false}},
      {"tenant", {.scalar = text_key(&OutputConfig::tenant)}},   // loki
      {"labels", {.node = set_output_labels, .single = false}},  // loki
      {"gzip", {.scalar = bool_key(&OutputConfig::gzip)}},       // loki
      // syslog
      {"address", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         size_t colon = s.rfind(':');
         uint64_t port = 0;
         if (colon == std::string::npos || colon == 0 ||
             !as_uint(s.substr(colon + 1), 1, 65535, port).empty())
           return fmt::format("expected HOST:PORT, got '{}'", s);
         o.address = s;
         return {};
       }}},
      {"protocol", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         if (s != "tcp" && s != "udp" && s != "tls")
           return fmt::format("expected tcp, udp or tls, got '{}'", s);
         o.protocol = s;
         return {};
       }}},
      {"facility", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         uint64_t v = 0;
         std::string e = as_uint(s, 0, 23, v);
         if (e.empty()) o.facility = static_cast<int>(v);
         return e;
       }}},
      {"app_name", {.scalar = [](const std::string& s, OutputConfig& o) -> std::string {
         if (s.empty() || s.size() > 48 || s.find_first_of(" ") != std::string::npos)
           return "expected 1-48 printable characters without spaces";
         o.app_name = s;
         return {};
       }}},
      // TLS (HTTPS and syslog over TLS)
      {"server_name", {.scalar = text_key(&OutputConfig::server_name)}},
      {"tls_verify", {.scalar = bool_key(&OutputConfig::tls_verify)}},
      {"ca_file", {.scalar = path_key(&OutputConfig::ca_file)}},
      {"cert_file", {.scalar = path_key(&OutputConfig::cert_file)}},
      {"key_file", {.scalar = path_key(&OutputConfig::key_file)}},
      // delivery of remote outputs
      {"timeout_ms", {.scalar = uint_key(&OutputConfig::timeout_ms, 1, 600000)}},
      {"batch_max", {.scalar = uint_key(&OutputConfig::batch_max, 1, 100000)}},
      {"batch_wait_ms", {.scalar = uint_key(&OutputConfig::batch_wait_ms, 0, 60000)}},
      {"retry_max_ms", {.scalar = uint_key(&OutputConfig::retry_max_ms, 10, 3600000)}},
      {"spool_max_mib", {.scalar = uint_key(&OutputConfig::spool_max_mib, 1, 1048576)}},
  };
  return m;
}

// One entry of `outputs:`; `names` collects the names seen so far (they must be unique).
Result<OutputConfig> parse_output(const YAML::Node& n, const std::string& source,
                                  OutputNames& names) {
  auto err = [&](const YAML::Mark& m, const std::string& msg) {
    return make_error(fmt::format("config {}: outputs: {}", yaml_where(source, m), msg));
  };
  if (!n.IsMap()) return err(n.Mark(), "each output is a mapping (name:, type:, ...)");
  OutputConfig o;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return err(kv.first.Mark(), "keys must be plain names");
    const std::string key = kv.first.Scalar();
    if (!seen.emplace(key, kv.first.Mark()).second)
      return err(kv.first.Mark(), fmt::format("duplicate key '{}'", key));
    const YAML::Node& v = kv.second;
    auto it = output_keys().find(key);
    const OutputKey* k = it == output_keys().end() ? nullptr : &it->second;
    // An unknown key with a list or mapping value is reported as such, before its name.
    if ((!k || k->single) && !v.IsScalar())
      return err(v.Mark(), fmt::format("key '{}' needs a single value", key));
    if (!k) {
      std::string known;
      for (const auto& [name, _] : output_keys()) known += (known.empty() ? "" : ", ") + name;
      return err(kv.first.Mark(), fmt::format("unknown key '{}' (known: {})", key, known));
    }
    if (k->node) {
      if (auto p = k->node({v, source, names}, o)) return err(p->at, p->message);
    } else if (std::string e = k->scalar(v.Scalar(), o); !e.empty()) {
      return err(v.Mark(), fmt::format("key '{}': {}", key, e));
    }
  }
  if (seen.count("type") == 0) return err(n.Mark(), "an output needs 'type'");
  const OutputTypeInfo& t = *output_type_info(o.type);
  if (o.name.empty()) o.name = t.name;
  if (seen.count("name") == 0) {
    auto [it, fresh] = names.emplace(o.name, n.Mark());
    if (!fresh)
      return err(n.Mark(), fmt::format("two outputs named '{}': give each a 'name'", o.name));
  }
  if (t.needs && (o.*t.needs_field).empty())
    return err(n.Mark(), fmt::format("output '{}' ({}) needs '{}'", o.name, t.name, t.needs));
  if (seen.count("seals") == 0) o.seals = t.seals;
  return o;
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
  Config c;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("config {}: {}", yaml_where(source, e.mark), e.msg));
  }
  if (root.IsNull()) return c;  // an empty file: all defaults
  if (!root.IsMap())
    return make_error(fmt::format("config {}: expected a mapping of keys to values",
                                  yaml_where(source, root.Mark())));
  std::map<std::string, YAML::Mark> seen;  // key -> where it was first set
  try {
    for (const auto& kv : root) {
      if (!kv.first.IsScalar())
        return make_error(fmt::format("config {}: keys must be plain names",
                                      yaml_where(source, kv.first.Mark())));
      std::string key = kv.first.Scalar();
      auto it = setters().find(key);
      if (it == setters().end()) {
        std::string known;
        for (const auto& [k, _] : setters()) known += (known.empty() ? "" : ", ") + k;
        return make_error(fmt::format("config {}: unknown key '{}' (known keys: {})",
                                      yaml_where(source, kv.first.Mark()), key, known));
      }
      auto [first, inserted] = seen.emplace(key, kv.first.Mark());
      if (!inserted)
        return make_error(fmt::format("config {}: duplicate key '{}' (first set at {})",
                                      yaml_where(source, kv.first.Mark()), key,
                                      yaml_where(source, first->second)));
      if (key == "redact_patterns") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key '{}' needs a list of regular expressions",
                                        yaml_where(source, kv.second.Mark()), key));
        for (const auto& item : kv.second) {
          if (!item.IsScalar() || item.Scalar().empty())
            return make_error(fmt::format("config {}: key '{}': expected a regular expression",
                                          yaml_where(source, item.Mark()), key));
          if (auto r = Redactor::make({item.Scalar()}); !r)
            return make_error(fmt::format("config {}: key '{}': {}",
                                          yaml_where(source, item.Mark()), key, r.message()));
          c.redact_patterns.push_back(item.Scalar());
        }
        continue;
      }
      if (key == "retention") {
        if (!kv.second.IsMap())
          return make_error(fmt::format(
              "config {}: key 'retention' needs a mapping (max_age_days, max_total_mib)",
              yaml_where(source, kv.second.Mark())));
        std::map<std::string, YAML::Mark> rseen;
        for (const auto& r : kv.second) {
          const std::string rk = r.first.IsScalar() ? r.first.Scalar() : std::string();
          uint64_t Config::*field = rk == "max_age_days"    ? &Config::retention_max_age_days
                                    : rk == "max_total_mib" ? &Config::retention_max_total_mib
                                                            : nullptr;
          if (!field)
            return make_error(fmt::format(
                "config {}: retention: unknown key '{}' (known: max_age_days, max_total_mib)",
                yaml_where(source, r.first.Mark()), rk));
          if (!rseen.emplace(rk, r.first.Mark()).second)
            return make_error(fmt::format("config {}: retention: duplicate key '{}'",
                                          yaml_where(source, r.first.Mark()), rk));
          std::string e = r.second.IsScalar() ? as_uint(r.second.Scalar(), 0, 1000000, c.*field)
                                              : std::string("expected a whole number");
          if (!e.empty())
            return make_error(fmt::format("config {}: retention: key '{}': {}",
                                          yaml_where(source, r.second.Mark()), rk, e));
        }
        continue;
      }
      if (key == "enforce") {
        auto set_mode = [&c](const std::string& v) -> std::string {
          if (v == "true" || v == "on" || v == "deny")
            c.enforce = true;
          else if (v == "false" || v == "off")
            c.enforce = false;
          else
            return fmt::format(
                "expected true, false or a mapping (mode, lsm_file, protect), got '{}'", v);
          return {};
        };
        if (kv.second.IsScalar()) {
          std::string e = set_mode(kv.second.Scalar());
          if (!e.empty())
            return make_error(fmt::format("config {}: key 'enforce': {}",
                                          yaml_where(source, kv.second.Mark()), e));
          continue;
        }
        if (!kv.second.IsMap())
          return make_error(fmt::format(
              "config {}: key 'enforce' needs true, false or a mapping (mode, lsm_file, protect)",
              yaml_where(source, kv.second.Mark())));
        c.enforce = true;  // a mapping turns it on unless it says `mode: off`
        std::map<std::string, YAML::Mark> eseen;
        for (const auto& r : kv.second) {
          const std::string ek = r.first.IsScalar() ? r.first.Scalar() : std::string();
          if (ek != "mode" && ek != "lsm_file" && ek != "protect" && ek != "fail" &&
              ek != "heartbeat_ms" && ek != "break_glass" && ek != "pin_root")
            return make_error(
                fmt::format("config {}: enforce: unknown key '{}' (known: mode, lsm_file, protect, "
                            "fail, heartbeat_ms, break_glass, pin_root)",
                            yaml_where(source, r.first.Mark()), ek));
          if (!eseen.emplace(ek, r.first.Mark()).second)
            return make_error(fmt::format("config {}: enforce: duplicate key '{}'",
                                          yaml_where(source, r.first.Mark()), ek));
          std::string e;
          if (ek == "break_glass") {
            // Absolute paths of programs that still run while failing closed (resolved to
            // device and inode when shauditd starts).
            if (!r.second.IsSequence()) {
              e = "needs a list of absolute paths";
            } else {
              c.enforce_break_glass.clear();
              for (const auto& item : r.second) {
                if (!item.IsScalar() || item.Scalar().empty() || item.Scalar()[0] != '/') {
                  e = fmt::format("expected an absolute path, got '{}'",
                                  item.IsScalar() ? item.Scalar() : std::string("(not a string)"));
                  break;
                }
                c.enforce_break_glass.push_back(item.Scalar());
              }
            }
          } else if (!r.second.IsScalar())
            e = "needs a single value";
          else if (ek == "fail")
            e = r.second.Scalar() == "closed" ? (c.enforce_fail_closed = true, std::string())
                : r.second.Scalar() == "open"
                    ? (c.enforce_fail_closed = false, std::string())
                    : fmt::format("expected open or closed, got '{}'", r.second.Scalar());
          else if (ek == "heartbeat_ms") {
            uint64_t v = 0;
            e = as_uint(r.second.Scalar(), 100, 600000, v);
            if (e.empty()) c.enforce_heartbeat_ms = static_cast<uint32_t>(v);
          } else if (ek == "mode")
            e = r.second.Scalar() == "deny"   ? (c.enforce = true, c.enforce_kill = false, "")
                : r.second.Scalar() == "kill" ? (c.enforce = true, c.enforce_kill = true, "")
                : r.second.Scalar() == "off"
                    ? (c.enforce = false, c.enforce_kill = false, std::string())
                    : fmt::format("expected deny, kill or off, got '{}'", r.second.Scalar());
          else if (ek == "protect")
            e = r.second.Scalar() == "true" ? (c.enforce_protect = true, std::string())
                : r.second.Scalar() == "false"
                    ? (c.enforce_protect = false, std::string())
                    : fmt::format("expected true or false, got '{}'", r.second.Scalar());
          else if (r.second.Scalar().empty() || r.second.Scalar()[0] != '/')
            e = fmt::format("expected an absolute path, got '{}'", r.second.Scalar());
          else if (ek == "pin_root")
            c.enforce_pin_root = r.second.Scalar();
          else
            c.enforce_lsm_file = r.second.Scalar();
          if (!e.empty())
            return make_error(fmt::format("config {}: enforce: key '{}': {}",
                                          yaml_where(source, r.second.Mark()), ek, e));
        }
        // The protection is BPF LSM programs: the kill mode (for kernels without BPF LSM) has
        // it only when asked for.
        if (c.enforce_kill && !eseen.count("protect")) c.enforce_protect = false;
        continue;
      }
      if (key == "outputs") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key 'outputs' needs a list of outputs",
                                        yaml_where(source, kv.second.Mark())));
        OutputNames names;
        for (const auto& item : kv.second) {
          auto o = parse_output(item, source, names);
          if (!o) return o.error();
          c.outputs.push_back(std::move(*o));
        }
        continue;
      }
      if (key == "unhooked_allowlist" || key == "rules" || key == "container_state_dirs") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key '{}' needs a list of absolute paths",
                                        yaml_where(source, kv.second.Mark()), key));
        auto& out = key == "rules"                  ? c.rules
                    : key == "container_state_dirs" ? c.container_state_dirs
                                                    : c.unhooked_allowlist;
        out.clear();
        for (const auto& item : kv.second) {
          if (!item.IsScalar() || item.Scalar().empty() || item.Scalar()[0] != '/')
            return make_error(fmt::format("config {}: key '{}': expected an absolute path",
                                          yaml_where(source, item.Mark()), key));
          out.push_back(item.Scalar());
        }
        continue;
      }
      if (!kv.second.IsScalar())
        return make_error(fmt::format("config {}: key '{}' needs a single value, not a {}",
                                      yaml_where(source, kv.second.Mark()), key,
                                      kv.second.IsMap()        ? "mapping"
                                      : kv.second.IsSequence() ? "list"
                                                               : "null"));
      std::string err = it->second(kv.second.Scalar(), c);
      if (!err.empty())
        return make_error(
            fmt::format("config {}: key '{}': {}", yaml_where(source, kv.second.Mark()), key, err));
    }
  } catch (const YAML::Exception& e) {
    return make_error(fmt::format("config {}: {}", yaml_where(source, e.mark), e.msg));
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
