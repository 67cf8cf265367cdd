// SPDX-License-Identifier: Apache-2.0
#include "outputs_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <limits>
#include <set>

#include "internal/rfc3339.h"
#include "shaudit/crypto.h"
#include "shaudit/record.h"

namespace shaudit::outfmt {
namespace {

using rules::Priority;

constexpr int64_t kNsPerSec = 1000000000;
constexpr std::string_view kZeroWidthSpace = "\xE2\x80\x8B";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr size_t kAuditCmdMax = 2048;

std::string_view strip_newline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  return line;
}

std::string_view str_or(const json::Object& o, std::string_view key, std::string_view dflt = {}) {
  const std::string* s = json::get_string(o, key);
  return s ? std::string_view(*s) : dflt;
}

const json::Object* object_field(const json::Object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->second.if_object();
}

// An alert's output field value; nullptr when absent or rendered as <NA>.
const std::string* output_field(const json::Object& rec, std::string_view name) {
  const json::Object* f = object_field(rec, "output_fields");
  if (!f) return nullptr;
  const std::string* s = json::get_string(*f, name);
  return s && *s != "<NA>" ? s : nullptr;
}

// A field shown as text: strings as they are, integers in decimal.
std::optional<std::string> text_field(const json::Object& rec, std::string_view key) {
  auto it = rec.find(key);
  if (it == rec.end()) return std::nullopt;
  if (const std::string* s = it->second.if_string()) return *s;
  if (const int64_t* i = it->second.if_int()) return std::to_string(*i);
  return std::nullopt;
}

// Identity of a record, with an alert's output fields as the fallback.
std::optional<std::string> user_of(const json::Object& rec) {
  if (auto u = text_field(rec, "user")) return u;
  if (const std::string* u = output_field(rec, "user.name")) return *u;
  return std::nullopt;
}
std::optional<std::string> uid_of(const json::Object& rec) {
  if (auto u = text_field(rec, "uid")) return u;
  if (const std::string* u = output_field(rec, "user.uid")) return *u;
  return std::nullopt;
}
std::optional<std::string> session_of(const json::Object& rec) {
  if (auto s = text_field(rec, "session")) return s;
  if (const std::string* s = output_field(rec, "session.id")) return *s;
  return std::nullopt;
}

std::string join_argv(const json::Object& rec) {
  auto it = rec.find("argv");
  if (it == rec.end() || !it->second.is_array()) return {};
  std::string out;
  bool first = true;
  for (const auto& a : it->second.as_array()) {
    const std::string* s = a.if_string();
    if (!s) continue;
    if (!first) out += ' ';
    out += *s;
    first = false;
  }
  return out;
}

// What was run: typed text, else argv, else the executable.
std::string command_text(const json::Object& rec) {
  if (const std::string* t = json::get_string(rec, "text")) return *t;
  std::string argv = join_argv(rec);
  if (!argv.empty()) return argv;
  if (const std::string* e = json::get_string(rec, "exe")) return *e;
  if (const std::string* p = json::get_string(rec, "path")) return *p;
  return {};
}

bool is_alert(const json::Object& rec) {
  return str_or(rec, "type") == record::kAlert;
}

Priority priority_or_warning(const json::Object& rec) {
  return record_priority(rec).value_or(Priority::kWarning);
}

std::optional<int64_t> record_time(const json::Object& rec) {
  const std::string* t = json::get_string(rec, "time");
  return t ? rfc3339_ns(*t) : std::nullopt;
}

bool parse_int64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Calendar pieces of a time in UTC (floor division, so times before 1970 work too).
struct Civil {
  struct tm tm;
  int64_t ns;  // 0..999999999
};
Civil civil(int64_t unix_ns) {
  int64_t sec = unix_ns / kNsPerSec;
  int64_t ns = unix_ns % kNsPerSec;
  if (ns < 0) {
    ns += kNsPerSec;
    --sec;
  }
  Civil c{};
  time_t t = static_cast<time_t>(sec);
  gmtime_r(&t, &c.tm);
  c.ns = ns;
  return c;
}

bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to y-m-d (y >= 1).
int64_t days_since_epoch(int64_t y, int m, int d) {
  auto leaps_through = [](int64_t year) { return year / 4 - year / 100 + year / 400; };
  int64_t days = 365 * (y - 1970) + (leaps_through(y - 1) - leaps_through(1969));
  for (int i = 1; i < m; ++i) days += days_in_month(y, i);
  return days + d - 1;
}

// JSON helpers for OTLP attributes.
json::Value otlp_string_attr(std::string_view key, std::string_view value) {
  json::Object v;
  v["stringValue"] = json::to_valid_utf8(value);
  json::Object a;
  a["key"] = key;
  a["value"] = std::move(v);
  return a;
}
json::Value otlp_int_attr(std::string_view key, int64_t value) {
  json::Object v;
  v["intValue"] = std::to_string(value);  // int64 is a decimal string in the JSON mapping
  json::Object a;
  a["key"] = key;
  a["value"] = std::move(v);
  return a;
}

std::string sanitize_label_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(out.begin(), '_');
  return out;
}

std::optional<std::string> label_value(const json::Object& rec, const std::string& field) {
  auto it = rec.find(field);
  const json::Value* found = it == rec.end() ? nullptr : &it->second;
  // "container.namespace": a field of an object field (a top-level name with a dot wins).
  if (!found && field.find('.') != std::string::npos) {
    const json::Object* obj = &rec;
    std::string_view rest = field;
    while (obj) {
      size_t dot = rest.find('.');
      auto f = obj->find(rest.substr(0, dot));
      if (f == obj->end()) return std::nullopt;
      if (dot == std::string_view::npos) {
        found = &f->second;
        break;
      }
      obj = f->second.is_object() ? &f->second.as_object() : nullptr;
      rest.remove_prefix(dot + 1);
    }
  }
  if (!found) return std::nullopt;
  const json::Value& v = *found;
  if (const std::string* s = v.if_string())
    return s->empty() ? std::nullopt : std::optional<std::string>(*s);
  if (const int64_t* i = v.if_int()) return std::to_string(*i);
  if (v.is_bool()) return std::string(v.as_bool() ? "true" : "false");
  return std::nullopt;
}

// Slack mrkdwn: & < > as entities, and a zero-width space after each backtick so no run of
// backticks can form a code fence.
std::string slack_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '`':
        out += '`';
        out += kZeroWidthSpace;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return out;
}

// Syslog header fields: printable US-ASCII without space, bounded, "-" when empty.
std::string syslog_token(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 33 && u <= 126) ? c : '_';
  }
  return out.empty() ? "-" : out;
}

void append_sd_param(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  for (char c : json::to_valid_utf8(value)) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  out += '"';
}

bool audit_needs_hex(std::string_view v) {
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    // '=' too: ausearch finds fields by their first text match, so a typed `res=failed` or
    // `terminal=/dev/pts/7` inside a quoted value would pose as libaudit's own fields.
    if (c == '"' || c == '\'' || c == '=' || u < 0x21 || u >= 0x7f) return true;
  }
  return false;
}

// A value auditd shows bare (numbers, keywords, ids); anything else goes through audit_nv.
bool audit_bare_token(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

void append_audit_bare(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ' ';
  if (audit_bare_token(value))
    out += fmt::format("{}={}", name, value);
  else
    out += audit_nv(name, value);
}

void append_audit_string(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += ' ';
  out += audit_nv(name, value);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<Priority> record_priority(const json::Object& rec) {
  const std::string* type = json::get_string(rec, "type");
  if (!type) return std::nullopt;
  std::string_view t = *type;
  if (t == record::kAlert) {
    const std::string* p = json::get_string(rec, "priority");
    return p ? rules::parse_priority(*p) : std::nullopt;
  }
  if (t == record::kBypass) {
    std::string_view sev = str_or(rec, "severity");
    if (sev == "high") return Priority::kCritical;
    if (sev == "low") return Priority::kNotice;
    return Priority::kWarning;
  }
  if (t == "output_recovered") return Priority::kNotice;  // the end of a failure, not one
  if (t == record::kLoss || t == "log_error" || t == "rules_error" || t.starts_with("output_"))
    return Priority::kError;
  if (t == record::kCommand || t == record::kExec || t == record::kSessionStart ||
      t == record::kSessionEnd || t == record::kCommandStatus || t == record::kNoncmdInput)
    return Priority::kInformational;
  return Priority::kDebug;
}

int syslog_severity(Priority p) {
  switch (p) {
    case Priority::kEmergency:
      return 0;
    case Priority::kAlert:
      return 1;
    case Priority::kCritical:
      return 2;
    case Priority::kError:
      return 3;
    case Priority::kWarning:
      return 4;
    case Priority::kNotice:
      return 5;
    case Priority::kInformational:
      return 6;
    case Priority::kDebug:
      return 7;
  }
  return 4;
}

int otel_severity_number(Priority p) {
  switch (p) {
    case Priority::kEmergency:
      return 21;
    case Priority::kAlert:
      return 19;
    case Priority::kCritical:
      return 18;
    case Priority::kError:
      return 17;
    case Priority::kWarning:
      return 13;
    case Priority::kNotice:
      return 10;
    case Priority::kInformational:
      return 9;
    case Priority::kDebug:
      return 5;
  }
  return 13;
}

std::optional<int64_t> rfc3339_ns(std::string_view s) {
  auto f = internal::scan_rfc3339(s);
  if (!f || !f->has_time) return std::nullopt;
  const int y = f->year, mo = f->month, d = f->day, h = f->hour, mi = f->minute, se = f->second;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
      se > 60 || f->offset_hours > 23 || f->offset_minutes > 59)
    return std::nullopt;
  const int64_t frac = f->frac_ns;
  const int64_t offset = f->offset_sign * (f->offset_hours * 3600 + f->offset_minutes * 60);
  int64_t secs = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (secs > kMax / kNsPerSec || secs < kMin / kNsPerSec) return std::nullopt;
  int64_t ns = secs * kNsPerSec;
  if (ns > kMax - frac) return std::nullopt;
  return ns + frac;
}

std::string record_id(std::string_view line) {
  return crypto::to_hex(crypto::sha256(strip_newline(line))).substr(0, 32);
}

std::string falco_json(const json::Object& alert, std::string_view hostname,
                       std::string_view record_id_given) {
  const bool alert_type = is_alert(alert);
  const int64_t ns = record_time(alert).value_or(0);
  const char* priority = rules::priority_name(priority_or_warning(alert));

  std::string text;
  if (const std::string* o = json::get_string(alert, "output"))
    text = *o;
  else if (!alert_type)
    text = command_text(alert);
  Civil c = civil(ns);
  std::string output = fmt::format("{:02}:{:02}:{:02}.{:09}: {} {}", c.tm.tm_hour, c.tm.tm_min,
                                   c.tm.tm_sec, c.ns, priority, text);

  json::Object fields;
  if (const json::Object* f = object_field(alert, "output_fields")) {
    for (const auto& [name, value] : *f) {
      int64_t n;
      const std::string* s = value.if_string();
      if ((name == "proc.pid" || name == "user.uid") && s && parse_int64(*s, n))
        fields[name] = n;
      else
        fields[name] = value;
    }
  }
  if (fields.empty()) {
    if (auto p = json::get_int(alert, "pid")) fields["proc.pid"] = *p;
    if (auto u = user_of(alert)) fields["user.name"] = *u;
    if (auto u = json::get_int(alert, "uid")) fields["user.uid"] = *u;
    if (auto s = session_of(alert)) fields["session.id"] = *s;
  }
  fields["evt.time"] = ns;
  // The record's id again as a field: falcosidekick replaces every event's uuid with one of its
  // own (handlers.go, newFalcoPayload), output_fields reach its destinations as sent.
  std::string id = record_id_given.size() >= 32 ? std::string(record_id_given.substr(0, 32))
                                                : record_id(json::encode(alert));
  fields["shaudit.id"] = id;

  std::set<std::string> tag_set;
  auto tags_it = alert.find("tags");
  if (tags_it != alert.end() && tags_it->second.is_array())
    for (const auto& t : tags_it->second.as_array())
      if (const std::string* s = t.if_string()) tag_set.insert(*s);
  json::Array tags;
  for (const auto& t : tag_set) tags.emplace_back(t);

  json::Object o;
  o["hostname"] = json::to_valid_utf8(hostname);
  o["output"] = std::move(output);
  o["output_fields"] = std::move(fields);
  o["priority"] = priority;
  o["rule"] = alert_type ? std::string(str_or(alert, "rule"))
                         : std::string(str_or(alert, "rule", str_or(alert, "type")));
  o["source"] = "shaudit";
  o["tags"] = std::move(tags);
  o["time"] = record::format_time(ns);
  o["uuid"] = fmt::format("{}-{}-{}-{}-{}", id.substr(0, 8), id.substr(8, 4), id.substr(12, 4),
                          id.substr(16, 4), id.substr(20, 12));
  return json::encode(o);
}

std::string slack_json(const json::Object& rec, std::string_view hostname) {
  // Everything that comes from the record or the person goes in one code block, where Slack
  // applies no formatting (*bold*, _italic_, ~strike~, links, mentions); & < > are escaped
  // there too, as Slack asks for all text, and backticks cannot form a fence.
  std::vector<std::string> who;
  if (auto u = user_of(rec)) who.push_back("user: " + one_line(*u));
  std::string host(str_or(rec, "host", hostname));
  if (!host.empty()) who.push_back("host: " + one_line(host));
  if (auto s = session_of(rec)) who.push_back("session: " + one_line(*s));
  std::string block;
  for (const auto& w : who) {
    if (!block.empty()) block += "  ";
    block += w;
  }
  const char* priority = rules::priority_name(priority_or_warning(rec));

  std::string text;
  std::string cmd;
  if (is_alert(rec)) {
    text = fmt::format("*{}* ({})", slack_escape(one_line(str_or(rec, "rule"))), priority);
    const std::string* c = output_field(rec, "cmd.text");
    if (!c) c = output_field(rec, "evt.text");
    if (!c) c = json::get_string(rec, "output");
    if (c) cmd = *c;
  } else {
    text =
        fmt::format("*{}* ({})", slack_escape(one_line(str_or(rec, "type", "record"))), priority);
    cmd = one_line(command_text(rec));
  }
  if (!cmd.empty()) block += (block.empty() ? "" : "\n") + cmd;
  if (!block.empty()) text += "\n```\n" + slack_escape(block) + "\n```";
  json::Object o;
  o["text"] = std::move(text);
  return json::encode(o);
}

std::string loki_push_json(const std::vector<LineRecord>& recs,
                           const std::vector<std::string>& label_fields,
                           const std::map<std::string, std::string>& static_labels) {
  using Labels = std::map<std::string, std::string>;
  std::map<Labels, size_t> index;
  std::vector<std::pair<Labels, json::Array>> streams;
  int64_t last_ns = 0;
  for (const auto& [line, rec] : recs) {
    if (!rec) continue;
    Labels labels;
    for (const auto& f : label_fields)
      if (auto v = label_value(*rec, f)) labels[sanitize_label_name(f)] = std::move(*v);
    labels["job"] = "shaudit";
    for (const auto& [k, v] : static_labels) labels[sanitize_label_name(k)] = v;

    if (auto t = record_time(*rec)) last_ns = *t;
    json::Array entry;
    entry.emplace_back(std::to_string(last_ns));
    entry.emplace_back(strip_newline(line));

    auto [it, fresh] = index.emplace(labels, streams.size());
    if (fresh) streams.emplace_back(std::move(labels), json::Array{});
    streams[it->second].second.emplace_back(std::move(entry));
  }
  json::Array out;
  for (auto& [labels, values] : streams) {
    json::Object stream;
    for (const auto& [k, v] : labels) stream[k] = v;
    json::Object s;
    s["stream"] = std::move(stream);
    s["values"] = std::move(values);
    out.emplace_back(std::move(s));
  }
  json::Object body;
  body["streams"] = std::move(out);
  return json::encode(body);
}

std::string otlp_logs_json(const std::vector<LineRecord>& recs, std::string_view hostname,
                           std::string_view service_name) {
  json::Array log_records;
  for (const auto& [raw_line, rec] : recs) {
    if (!rec) continue;
    std::string_view line = strip_newline(raw_line);
    Priority p = priority_or_warning(*rec);
    json::Object lr;
    if (auto t = record_time(*rec)) {
      lr["timeUnixNano"] = std::to_string(*t);
      lr["observedTimeUnixNano"] = std::to_string(*t);
    }
    lr["severityNumber"] = otel_severity_number(p);
    lr["severityText"] = rules::priority_name(p);
    json::Object body;
    body["stringValue"] = json::to_valid_utf8(line);
    lr["body"] = std::move(body);
    json::Array attrs;
    if (const std::string* t = json::get_string(*rec, "type"))
      attrs.push_back(otlp_string_attr("shaudit.type", *t));
    if (auto seq = json::get_int(*rec, "seq")) attrs.push_back(otlp_int_attr("shaudit.seq", *seq));
    attrs.push_back(otlp_string_attr("shaudit.id", record_id(line)));
    if (auto u = user_of(*rec)) attrs.push_back(otlp_string_attr("user.name", *u));
    if (auto s = session_of(*rec)) attrs.push_back(otlp_string_attr("session.id", *s));
    if (is_alert(*rec))
      if (const std::string* r = json::get_string(*rec, "rule"))
        attrs.push_back(otlp_string_attr("shaudit.rule", *r));
    lr["attributes"] = std::move(attrs);
    log_records.emplace_back(std::move(lr));
  }
  json::Object scope;
  scope["name"] = "shaudit";
  json::Object scope_logs;
  scope_logs["scope"] = std::move(scope);
  scope_logs["logRecords"] = std::move(log_records);
  json::Object resource;
  resource["attributes"] = json::Array{otlp_string_attr("service.name", service_name),
                                       otlp_string_attr("host.name", hostname)};
  json::Object resource_logs;
  resource_logs["resource"] = std::move(resource);
  resource_logs["scopeLogs"] = json::Array{std::move(scope_logs)};
  json::Object out;
  out["resourceLogs"] = json::Array{std::move(resource_logs)};
  return json::encode(out);
}

std::string syslog5424(const json::Object& rec, std::string_view raw_line,
                       std::string_view hostname, std::string_view app_name, int facility) {
  std::string_view line = strip_newline(raw_line);
  if (facility < 0 || facility > 23) facility = 13;
  int pri = facility * 8 + syslog_severity(priority_or_warning(rec));

  std::string timestamp = "-";
  if (auto t = record_time(rec)) {
    Civil c = civil(*t);
    timestamp = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", c.tm.tm_year + 1900,
                            c.tm.tm_mon + 1, c.tm.tm_mday, c.tm.tm_hour, c.tm.tm_min, c.tm.tm_sec,
                            c.ns / 1000);
  }
  std::string procid = "-";
  if (auto p = json::get_int(rec, "pid")) procid = std::to_string(*p);

  std::string sd = "[shaudit@32473";
  append_sd_param(sd, "id", record_id(line));
  if (const std::string* t = json::get_string(rec, "type")) append_sd_param(sd, "type", *t);
  if (auto s = text_field(rec, "seq")) append_sd_param(sd, "seq", *s);
  if (auto s = session_of(rec)) append_sd_param(sd, "session", *s);
  if (auto u = user_of(rec)) append_sd_param(sd, "user", *u);
  if (auto u = uid_of(rec)) append_sd_param(sd, "uid", *u);
  if (is_alert(rec))
    if (const std::string* r = json::get_string(rec, "rule")) append_sd_param(sd, "rule", *r);
  sd += ']';

  std::string out =
      fmt::format("<{}>1 {} {} {} {} {} {}", pri, timestamp, syslog_token(hostname, 255),
                  syslog_token(app_name, 48), syslog_token(procid, 128),
                  syslog_token(str_or(rec, "type"), 32), sd);
  if (!line.empty()) {
    // RFC 5424 6.4: MSG-UTF8 = BOM UTF-8-STRING. The line is JSON as the log writer encodes
    // it, always UTF-8; without the BOM a collector must treat MSG as MSG-ANY (unknown bytes).
    out += ' ';
    out += kUtf8Bom;
    out += line;
  }
  return out;
}

std::string audit_nv(std::string_view name, std::string_view value) {
  std::string out(name);
  out += '=';
  if (!audit_needs_hex(value)) {
    out += '"';
    out += value;
    out += '"';
    return out;
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    out += kHex[u >> 4];
    out += kHex[u & 0x0F];
  }
  return out;
}

std::string audit_message(const json::Object& rec) {
  std::string out;
  std::string_view type = str_or(rec, "type");
  if (!type.empty()) append_audit_bare(out, "shaudit_type", type);
  if (auto s = session_of(rec)) append_audit_string(out, "shaudit_session", *s);
  if (auto u = user_of(rec)) append_audit_string(out, "user", *u);
  if (auto u = uid_of(rec)) append_audit_bare(out, "uid", *u);
  if (auto l = text_field(rec, "loginuid")) {
    if (all_digits(*l))
      append_audit_bare(out, "loginuid", *l);
    else
      append_audit_string(out, "loginuid", *l);
  }
  if (auto a = text_field(rec, "audit_session")) {
    if (all_digits(*a))
      append_audit_bare(out, "audit_session", *a);
    else
      append_audit_string(out, "audit_session", *a);
  }
  if (auto p = json::get_int(rec, "pid")) append_audit_bare(out, "pid", std::to_string(*p));
  if (auto s = json::get_int(rec, "seq")) append_audit_bare(out, "seq", std::to_string(*s));
  append_audit_bare(out, "shaudit_id", record_id(json::encode(rec)));
  // The typed command an exec or an exit status belongs to, to link them in the audit log.
  if (auto c = json::get_string(rec, "command")) append_audit_string(out, "shaudit_command", *c);
  if (type == record::kBypass)
    if (const std::string* k = json::get_string(rec, "kind")) append_audit_bare(out, "kind", *k);

  std::string cmd;
  bool have_cmd = false;
  if (type == record::kAlert) {
    // info: a field auparse interprets as an encoded string (its typetab: AUPARSE_TYPE_ESCAPED),
    // so `ausearch -i` shows a rule name with spaces decoded; a "rule" field stayed hex.
    if (const std::string* r = json::get_string(rec, "rule")) append_audit_string(out, "info", *r);
    append_audit_bare(out, "priority", rules::priority_name(priority_or_warning(rec)));
    const std::string* c = output_field(rec, "cmd.text");
    if (!c) c = output_field(rec, "evt.text");  // (the default rules' templates)
    if (c) {
      cmd = *c;
      have_cmd = true;
    }
  } else if (json::get_string(rec, "text")) {
    cmd = record::get_bytes(rec, "text");  // the exact bytes: hex carries any byte
    have_cmd = true;
  } else if (rec.count("argv")) {
    std::vector<std::string> argv = record::get_argv(rec);
    for (size_t i = 0; i < argv.size(); ++i) cmd += (i ? " " : "") + argv[i];
    have_cmd = true;
  }
  if (have_cmd) {
    size_t full = cmd.size();
    if (full > kAuditCmdMax) cmd.resize(kAuditCmdMax);
    append_audit_string(out, "cmd", cmd);
    if (full > kAuditCmdMax) append_audit_bare(out, "cmd_len", std::to_string(full));
  }
  return out;
}

}  // namespace shaudit::outfmt
