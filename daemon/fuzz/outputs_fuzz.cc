// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the output payload formatters: arbitrary bytes as a log line; when
// they parse as a JSON object (a record of any shape, fields of any type), every formatter
// must produce its payload without crashing, and the JSON payloads must parse back.
#include <string>

#include "outputs_format.h"
#include "shaudit/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shaudit;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  (void)outfmt::rfc3339_ns(line);
  (void)outfmt::record_id(line);
  auto v = json::parse(line);
  if (!v || !v->is_object()) return 0;
  const json::Object& rec = v->as_object();
  (void)outfmt::record_priority(rec);
  std::vector<outfmt::LineRecord> batch{{line, &rec}, {line, &rec}};
  for (const std::string& body :
       {outfmt::falco_json(rec, "host"), outfmt::slack_json(rec, "host"),
        outfmt::loki_push_json(batch, {"type", "user", "weird.label-name"}, {{"env", "x"}}),
        outfmt::otlp_logs_json(batch, "host", "shaudit")}) {
    if (!json::parse(body)) __builtin_trap();  // a payload that is not JSON is a bug
  }
  (void)outfmt::syslog5424(rec, line, "host name", "app", 10);
  (void)outfmt::audit_message(rec);
  return 0;
}
