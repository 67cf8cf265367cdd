// SPDX-License-Identifier: Apache-2.0
// Payload formatters for remote outputs (Falco/falcosidekick, Slack, Loki, OTLP, syslog,
// auditd). Pure functions: a record (the parsed object of one log line, and where needed the
// line itself) goes in, the bytes to send come out. No I/O, no clock, no exceptions of their
// own: a missing or mistyped field is left out (or shown as documented below), never an
// error. Senders, spooling, retries and priority filtering live beside them in outputs.cc and
// out_*.cc.
//
// "line" is always the record's log line without its terminating newline (a single trailing
// '\n' is ignored where a line is taken). Because a log line is the canonical JSON encoding of
// its record, json::encode(record) == line for every record read back from the log; the
// formatters that receive only the object (falco_json, audit_message) rely on that to compute
// the record id.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shaudit/json.h"
#include "shaudit/rules.h"

namespace shaudit::outfmt {

// A record as it was written: its log line and its parsed object (never null).
using LineRecord = std::pair<std::string_view, const json::Object*>;

// The priority a record carries for outputs (per-output minimum priority, severities):
//   alert                                              its "priority" (Falco names, any case)
//   bypass                                             "severity": "high" -> Critical,
//                                                      "low" -> Notice, other/absent -> Warning
//   loss, log_error, rules_error, output_* (the output
//   framework's own trouble records, e.g. overflow)    Error
//   command, exec, session_start, session_end,
//   command_status, noncmd_input                       Informational
//   seal, start, rotate, key_change, anything else     Debug
// nullopt when the record has no string "type", or is an alert whose priority is absent or
// not a priority name.
std::optional<rules::Priority> record_priority(const json::Object& rec);

// Severity numbers of a priority. Syslog (RFC 5424 section 6.2.1): Emergency 0 ... Debug 7.
int syslog_severity(rules::Priority p);
// OpenTelemetry SeverityNumber, after the syslog row of the OTel log data model's example
// mapping (data-model-appendix, appendix B): Emergency 21 (FATAL), Alert 19 (ERROR3),
// Critical 18 (ERROR2), Error 17 (ERROR), Warning 13 (WARN), Notice 10 (INFO2),
// Informational 9 (INFO), Debug 5 (DEBUG).
int otel_severity_number(rules::Priority p);

// Nanoseconds since the Unix epoch of an RFC 3339 date-time:
//   YYYY-MM-DD ('T' | 't' | ' ') HH:MM:SS [ '.' 1*DIGIT ] ( 'Z' | 'z' | ('+'|'-') HH:MM )
// Fractions finer than a nanosecond are truncated; second 60 (a leap second) counts as the
// first second of the next minute. nullopt for anything else: a wrong shape, trailing text,
// an impossible date (2026-02-29) or field, a time outside what int64 nanoseconds hold
// (about 1677..2262).
std::optional<int64_t> rfc3339_ns(std::string_view text);

// The stable id of a record: the first 32 hex digits (lowercase, 128 bits) of SHA-256 over
// its exact log line. Redelivering the same line gives the same id, so receivers can drop
// duplicates.
std::string record_id(std::string_view line);

// An alert in the JSON Falco writes with json_output: true, which falcosidekick accepts as
// its FalcoPayload (one object, keys in canonical order):
//   hostname       the hostname argument
//   output         "HH:MM:SS.nnnnnnnnn: <Priority> <alert output>" (UTC time of the record),
//                  the prefix Falco puts before every rule output
//   output_fields  the alert's output_fields (the fields its rule's output names); proc.pid and
//                  user.uid as integers when they are numbers, as Falco types them; plus
//                  "evt.time": the record time in integer nanoseconds and "shaudit.id": the
//                  record id of uuid below, 32 hex digits (always). An alert
//                  without output_fields (written before they existed) gets evt.time,
//                  proc.pid, user.name, user.uid and session.id from what the record has, so
//                  the object is never empty (falcosidekick rejects an empty one)
//   priority       Falco spelling ("Warning"); an unparseable one is sent as "Warning"
//   rule           the rule name
//   source         "shaudit"
//   tags           the rule's tags, sorted and unique (Falco keeps them in a set); [] if none
//   time           the record time, RFC 3339 UTC with 9 fractional digits (the Unix epoch
//                  when the record has no valid time)
//   uuid           the record id in 8-4-4-4-12 UUID layout: `id` when given (the id of the
//                  log line the event was made from: a non-alert record is sent as an event
//                  built from it), else record_id of json::encode(alert); stable across
//                  redeliveries. falcosidekick replaces the uuid of every event it receives
//                  with a random one of its own: its destinations see the id as shaudit.id
// Meant for alert records; another record type is still formatted, with its type as rule and
// its text (or output) as output.
std::string falco_json(const json::Object& alert, std::string_view hostname,
                       std::string_view id = {});

// A Slack incoming-webhook body {"text": "..."} in Slack mrkdwn (lines joined by '\n'):
//   *<rule>* (<priority>)               an alert; any other record: *<type>* (<priority>)
//   ```
//   user: <u>  host: <h>  session: <s>  (the parts that are known; no line when none is)
//   <command>                           (no line when there is none)
//   ```                                 (no block when both lines are absent)
// Only the rule name or record type and the priority are outside the code block, so Slack's
// formatting (*bold*, _italic_, ~strike~, <links|and>, <!channel>) never applies to what the
// person typed or to their name. The command of an alert is output_fields["cmd.text"], else
// output_fields["evt.text"], else the alert output (line breaks kept); of another record its
// text, argv or exe on one line (line breaks and tabs turned into spaces). The host is the
// record's "host" or else the hostname argument; the user is "user" or else
// output_fields["user.name"]. Everything taken from the record has & < > escaped as &amp;
// &lt; &gt; (Slack's escaping), and every backtick is followed by a zero-width space (U+200B),
// so a command cannot close the code block early or open one (the text still reads the same).
std::string slack_json(const json::Object& rec, std::string_view hostname);

// A Loki push body for POST /loki/api/v1/push:
//   {"streams":[{"stream":{<labels>},"values":[["<unix ns>","<line>"],...]},...]}
// Labels of a record: for each name in label_fields, the record's top-level field of that
// name (string as is, integer in decimal, boolean as true/false; absent, empty or of another
// type: no label), named after the field with every character outside [a-zA-Z0-9_] turned
// into '_' (and '_' put before a leading digit); then job="shaudit"; then static_labels
// (names sanitised the same way), which replace labels of the same name (so they can also
// replace job). Records with the same label set share a stream; streams appear in the order
// of their first record, and each keeps its records in the given order. The timestamp is
// the record's "time" in nanoseconds (a decimal string); a record without a valid time takes
// the time of the record before it in the batch (0 if none).
std::string loki_push_json(const std::vector<LineRecord>& recs,
                           const std::vector<std::string>& label_fields,
                           const std::map<std::string, std::string>& static_labels);

// An OTLP/HTTP JSON body for POST /v1/logs (ExportLogsServiceRequest in the protobuf JSON
// mapping: lowerCamelCase keys, enums as numbers, 64-bit integers as decimal strings):
//   {"resourceLogs":[{"resource":{"attributes":[service.name, host.name]},
//                     "scopeLogs":[{"scope":{"name":"shaudit"},"logRecords":[...]}]}]}
// Each log record: timeUnixNano and observedTimeUnixNano (both the record's time, decimal
// strings; left out when the record has no valid time), severityNumber
// (otel_severity_number), severityText (Falco priority name), body {"stringValue": line},
// attributes [{key, value:{stringValue|intValue}}]: shaudit.type, shaudit.seq (intValue),
// shaudit.id (record_id), user.name, session.id, and for alerts shaudit.rule; attributes the
// record does not have are left out. Records without a priority are sent as Warning.
std::string otlp_logs_json(const std::vector<LineRecord>& recs, std::string_view hostname,
                           std::string_view service_name);

// One RFC 5424 syslog message, without transport framing (no octet count, no newline):
//   <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [shaudit@32473 id=".." type=".." seq=".."
//   session=".." user=".." uid=".." rule=".."] MSG
// PRI = facility * 8 + syslog_severity (facility outside 0..23 is taken as 13, "log audit";
// a record without a priority as Warning). TIMESTAMP: the record time in UTC with its
// fraction truncated to microseconds (TIME-SECFRAC allows at most 6 digits), "-" without a
// valid time. HOSTNAME, APP-NAME: every byte outside printable ASCII (33..126) replaced by
// '_', cut to 255 and 48 bytes, "-" when empty. PROCID: the record's pid, else "-". MSGID:
// the record type (sanitised, at most 32 bytes), else "-". SD-PARAMs the record lacks are
// left out (user falls back to output_fields["user.name"] as in Slack); values have '"', '\'
// and ']' escaped with a backslash. MSG: the UTF-8 BOM (EF BB BF, RFC 5424 section 6.4:
// MSG-UTF8) then the line as it is; no MSG (and no space before it) when the line is empty.
std::string syslog5424(const json::Object& rec, std::string_view line, std::string_view hostname,
                       std::string_view app_name, int facility);

// One auditd name=value field the way libaudit writes untrusted strings
// (audit_encode_nv_string, as the kernel does for comm/exe/path): when the value contains a
// double quote, a byte below 0x21 (space, control characters), 0x7F or a byte of 0x80 and
// above, name=HEX with the value's bytes in uppercase hex and no quotes; otherwise
// name="value". Stricter than libaudit in one point: a single quote also forces hex, since a
// user message travels inside msg='...'.
std::string audit_nv(std::string_view name, std::string_view value);

// The message body for an AUDIT_USER_CMD-style user message (audit_log_user_message /
// audit_log_user_command). The kernel stamps such messages with shauditd's own pid, uid,
// auid and ses, so the person's identity travels in the body:
//   shaudit_type=<type> shaudit_session=".." user=".." uid=N loginuid=N audit_session=N
//   pid=N seq=N shaudit_id=<record id> [kind=..] [info=".." priority=<Priority>] cmd=..
// Integers, types, priorities and ids are bare tokens; strings from the person's side go
// through audit_nv (cmd is therefore hex whenever it has a space). cmd is the record's text,
// or its argv joined by spaces (exec, bypass), or for an alert output_fields["cmd.text"];
// longer than 2048 bytes it is cut there and cmd_len=<full length> follows. The record id
// is named shaudit_id rather than id because auparse interprets "id" as a uid. An alert's rule
// name is info=: a field auparse's type table interprets as an encoded string (as cmd), so
// `ausearch -i` shows it decoded (an unknown name such as "rule" stays hex). Absent fields
// are left out.
std::string audit_message(const json::Object& rec);

}  // namespace shaudit::outfmt
