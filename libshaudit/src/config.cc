// SPDX-License-Identifier: Apache-2.0
#include "shaudit/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
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
rules: []
redact_patterns: []
state_dir: /var/lib/shaudit
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

const char* output_type_name(OutputType t) {
  switch (t) {
    case OutputType::kFile:
      return "file";
    case OutputType::kStdout:
      return "stdout";
    case OutputType::kSyslog:
      return "syslog";
    case OutputType::kAuditd:
      return "auditd";
    case OutputType::kSlack:
      return "slack";
    case OutputType::kLoki:
      return "loki";
    case OutputType::kWebhook:
      return "webhook";
    case OutputType::kFalcosidekick:
      return "falcosidekick";
    case OutputType::kOtlp:
      return "otlp";
  }
  return "?";
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

// One entry of `outputs:`; `names` collects the names seen so far (they must be unique).
Result<OutputConfig> parse_output(const YAML::Node& n, const std::string& source,
                                  std::map<std::string, YAML::Mark>& names) {
  auto err = [&](const YAML::Mark& m, const std::string& msg) {
    return make_error(fmt::format("config {}: outputs: {}", yaml_where(source, m), msg));
  };
  if (!n.IsMap()) return err(n.Mark(), "each output is a mapping (name:, type:, ...)");
  OutputConfig o;
  bool have_type = false;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return err(kv.first.Mark(), "keys must be plain names");
    const std::string key = kv.first.Scalar();
    if (!seen.emplace(key, kv.first.Mark()).second)
      return err(kv.first.Mark(), fmt::format("duplicate key '{}'", key));
    const YAML::Node& v = kv.second;
    const YAML::Mark vm = v.Mark();
    if (key == "headers") {
      if (!v.IsMap()) return err(vm, "'headers' needs a mapping of header names to values");
      for (const auto& h : v) {
        if (!h.first.IsScalar() || !h.second.IsScalar() || h.first.Scalar().empty())
          return err(h.first.Mark(), "'headers': each header is NAME: VALUE");
        const std::string& hn = h.first.Scalar();
        const std::string& hv = h.second.Scalar();
        if (hn.find_first_of(": \r\n") != std::string::npos ||
            hv.find_first_of("\r\n") != std::string::npos)
          return err(h.first.Mark(), fmt::format("'headers': invalid header '{}'", hn));
        o.headers.emplace_back(hn, hv);
      }
      continue;
    }
    if (key == "labels") {
      if (!v.IsSequence()) return err(vm, "'labels' needs a list of record field names");
      o.labels.clear();
      for (const auto& item : v) {
        if (!item.IsScalar() || item.Scalar().empty())
          return err(item.Mark(), "'labels': expected a field name");
        o.labels.push_back(item.Scalar());
      }
      continue;
    }
    if (!v.IsScalar()) return err(vm, fmt::format("key '{}' needs a single value", key));
    const std::string& s = v.Scalar();
    std::string e;
    uint64_t u = 0;
    if (key == "name") {
      if (s.empty() || s.size() > 64 ||
          s.find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
              std::string::npos ||
          s[0] == '.')
        return err(
            vm, fmt::format(
                    "name '{}': use 1-64 of A-Z a-z 0-9 _ . - (it names the spool directory)", s));
      auto [it, fresh] = names.emplace(s, vm);
      if (!fresh)
        return err(vm, fmt::format("duplicate output name '{}' (first at {})", s,
                                   yaml_where(source, it->second)));
      o.name = s;
    } else if (key == "type") {
      static const std::pair<const char*, OutputType> kTypes[] = {
          {"file", OutputType::kFile},       {"stdout", OutputType::kStdout},
          {"syslog", OutputType::kSyslog},   {"auditd", OutputType::kAuditd},
          {"slack", OutputType::kSlack},     {"loki", OutputType::kLoki},
          {"webhook", OutputType::kWebhook}, {"falcosidekick", OutputType::kFalcosidekick},
          {"otlp", OutputType::kOtlp}};
      bool found = false;
      for (const auto& [tn, tv] : kTypes)
        if (s == tn) {
          o.type = tv;
          found = true;
        }
      if (!found)
        return err(vm, fmt::format("unknown type '{}' (file, stdout, syslog, auditd, slack, loki, "
                                   "webhook, falcosidekick, otlp)",
                                   s));
      have_type = true;
    } else if (key == "enabled") {
      e = as_bool(s, o.enabled);
    } else if (key == "seals") {
      e = as_bool(s, o.seals);
    } else if (key == "tls_verify") {
      e = as_bool(s, o.tls_verify);
    } else if (key == "gzip") {
      e = as_bool(s, o.gzip);
    } else if (key == "events") {
      if (s == "alerts")
        o.events = OutputEvents::kAlerts;
      else if (s == "records")
        o.events = OutputEvents::kRecords;
      else
        e = fmt::format("expected alerts or records, got '{}'", s);
    } else if (key == "minimum_priority") {
      auto p = rules::parse_priority(s);
      if (!p)
        e = fmt::format(
            "unknown priority '{}' (emergency, alert, critical, error, warning, notice, "
            "informational, debug)",
            s);
      else
        o.minimum_priority = rules::priority_name(*p);
    } else if (key == "path" || key == "ca_file" || key == "cert_file" || key == "key_file") {
      if (s.empty() || s[0] != '/')
        e = fmt::format("expected an absolute path, got '{}'", s);
      else
        (key == "path"        ? o.path
         : key == "ca_file"   ? o.ca_file
         : key == "cert_file" ? o.cert_file
                              : o.key_file) = s;
    } else if (key == "url") {
      if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0)
        e = fmt::format("expected an http:// or https:// URL, got '{}'", s);
      else
        o.url = s;
    } else if (key == "address") {
      size_t colon = s.rfind(':');
      if (colon == std::string::npos || colon == 0 ||
          as_uint(s.substr(colon + 1), 1, 65535, u).size())
        e = fmt::format("expected HOST:PORT, got '{}'", s);
      else
        o.address = s;
    } else if (key == "protocol") {
      if (s != "tcp" && s != "udp" && s != "tls")
        e = fmt::format("expected tcp, udp or tls, got '{}'", s);
      else
        o.protocol = s;
    } else if (key == "facility") {
      e = as_uint(s, 0, 23, u);
      o.facility = static_cast<int>(u);
    } else if (key == "app_name") {
      if (s.empty() || s.size() > 48 || s.find_first_of(" ") != std::string::npos)
        e = "expected 1-48 printable characters without spaces";
      else
        o.app_name = s;
    } else if (key == "server_name") {
      o.server_name = s;
    } else if (key == "tenant") {
      o.tenant = s;
    } else if (key == "timeout_ms") {
      e = as_uint(s, 1, 600000, o.timeout_ms);
    } else if (key == "batch_max") {
      e = as_uint(s, 1, 100000, o.batch_max);
    } else if (key == "batch_wait_ms") {
      e = as_uint(s, 0, 60000, o.batch_wait_ms);
    } else if (key == "retry_max_ms") {
      e = as_uint(s, 10, 3600000, o.retry_max_ms);
    } else if (key == "spool_max_mib") {
      e = as_uint(s, 1, 1048576, o.spool_max_mib);
    } else {
      return err(
          kv.first.Mark(),
          fmt::format(
              "unknown key '{}' (known: address, app_name, batch_max, batch_wait_ms, ca_file, "
              "cert_file, enabled, events, facility, gzip, headers, key_file, labels, "
              "minimum_priority, name, path, protocol, retry_max_ms, seals, server_name, "
              "spool_max_mib, tenant, timeout_ms, tls_verify, type, url)",
              key));
    }
    if (!e.empty()) return err(vm, fmt::format("key '{}': {}", key, e));
  }
  if (!have_type) return err(n.Mark(), "an output needs 'type'");
  if (o.name.empty()) o.name = output_type_name(o.type);
  if (seen.count("name") == 0) {
    auto [it, fresh] = names.emplace(o.name, n.Mark());
    if (!fresh)
      return err(n.Mark(), fmt::format("two outputs named '{}': give each a 'name'", o.name));
  }
  auto need = [&](bool ok, const char* what) -> std::string {
    return ok ? std::string()
              : fmt::format("output '{}' ({}) needs '{}'", o.name, output_type_name(o.type), what);
  };
  std::string missing;
  switch (o.type) {
    case OutputType::kFile:
      missing = need(!o.path.empty(), "path");
      break;
    case OutputType::kSyslog:
      missing = need(!o.address.empty(), "address");
      break;
    case OutputType::kSlack:
    case OutputType::kLoki:
    case OutputType::kWebhook:
    case OutputType::kFalcosidekick:
    case OutputType::kOtlp:
      missing = need(!o.url.empty(), "url");
      break;
    default:
      break;
  }
  if (!missing.empty()) return err(n.Mark(), missing);
  if (o.type == OutputType::kSlack && seen.count("seals") == 0) o.seals = false;  // a chat channel
  return o;
}

using Setter = std::function<std::string(const std::string& scalar, Config&)>;

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
      {"rules", nullptr},
      {"redact_patterns", nullptr},
      {"outputs", nullptr},
      {"state_dir", path_key(&Config::state_dir)},
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
      if (key == "outputs") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key 'outputs' needs a list of outputs",
                                        yaml_where(source, kv.second.Mark())));
        std::map<std::string, YAML::Mark> names;
        for (const auto& item : kv.second) {
          auto o = parse_output(item, source, names);
          if (!o) return o.error();
          c.outputs.push_back(std::move(*o));
        }
        continue;
      }
      if (key == "unhooked_allowlist" || key == "rules") {
        if (!kv.second.IsSequence())
          return make_error(fmt::format("config {}: key '{}' needs a list of absolute paths",
                                        yaml_where(source, kv.second.Mark()), key));
        auto& out = key == "rules" ? c.rules : c.unhooked_allowlist;
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
