// SPDX-License-Identifier: Apache-2.0
#include "outputs_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace shaudit::outfmt {
namespace {

using rules::Priority;

// Log lines in canonical form (keys sorted), as the writer produces them.
const std::string kCommandLine =
    R"j({"audit_session":"7","command":"4242.3","host":"vm","loginuid":"1000","pid":4242,)j"
    R"j("prev":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",)j"
    R"j("remote_host":"127.0.0.1","seq":12,"session":"4fd7966485e0ab52","shell":"bash",)j"
    R"j("text":"cat /etc/shadow","time":"2026-11-28T15:33:30.541624062Z","tty":"/dev/pts/3",)j"
    R"j("type":"command","uid":1000,"user":"alice"})j";

const std::string kAlertLine =
    R"j({"output":"shadow read by alice (cmd=cat /etc/shadow)",)j"
    R"j("output_fields":{"cmd.text":"cat /etc/shadow","proc.pid":"4242","user.name":"alice"},)j"
    R"j("pid":4242,"prev":"5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",)j"
    R"j("priority":"Warning","ref_seq":12,"ref_type":"command","rule":"Read shadow file",)j"
    R"j("seq":13,"session":"4fd7966485e0ab52","tags":["mitre_credential_access","filesystem"],)j"
    R"j("time":"2026-11-28T15:33:30.541700000Z","type":"alert"})j";

// An alert written before output_fields existed.
const std::string kOldAlertLine =
    R"j({"output":"o","pid":7,"priority":"CRITICAL","rule":"r","seq":5,"session":"s1",)j"
    R"j("tags":[],"time":"2026-11-28T15:33:30Z","type":"alert"})j";

const std::string kBypassLine =
    R"j({"argv":["/tmp/.x/busybox","sh","-c","id"],"evidence":"exec without report",)j"
    R"j("exe":"/tmp/.x/busybox","kind":"unhooked_process","pid":999,"seq":14,)j"
    R"j("severity":"high","time":"2026-11-28T15:33:31.000000000Z","type":"bypass","uid":0,)j"
    R"j("user":"root"})j";

const std::string kSealLine =
    R"j({"first_seq":1,"key_id":"4fd7966485e0ab52","prev":"00ff","records":19,"seq":20,)j"
    R"j("sig":"c2ln","time":"2026-11-28T15:33:32.123456789Z","type":"seal"})j";

// Non-ASCII, quotes, backslash, backticks, ']' and Slack's specials; no host, no tty.
const std::string kNastyLine =
    R"j({"pid":77,"seq":30,"session":"s\"1]","shell":"zsh",)j"
    R"j("text":"printf \"héllo ```x``` ] \\ 'q'\" <b>&",)j"
    R"j("time":"2026-11-28T15:33:33.999999999Z","type":"command","uid":1001,"user":"bøb"})j";
const std::string kNastyText = "printf \"h\xC3\xA9llo ```x``` ] \\ 'q'\" <b>&";

const std::string kZwsp = "\xE2\x80\x8B";
const std::string kBom = "\xEF\xBB\xBF";

json::Object parse_obj(const std::string& line) {
  auto v = json::parse(line);
  EXPECT_TRUE(v.ok()) << line;
  if (!v.ok() || !v->is_object()) return {};
  EXPECT_EQ(json::encode(*v), line) << "test line not canonical";
  return v->as_object();
}

std::set<std::string> keys(const json::Object& o) {
  std::set<std::string> out;
  for (const auto& [k, v] : o) out.insert(k);
  return out;
}

// Parses a JSON payload and returns its top-level object.
json::Object parse_payload(const std::string& text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v.ok()) << "not valid JSON: " << text;
  if (!v.ok() || !v->is_object()) {
    ADD_FAILURE() << "not a JSON object: " << text;
    return {};
  }
  return v->as_object();
}

std::string uuid_of(const std::string& line) {
  std::string id = record_id(line);
  return id.substr(0, 8) + "-" + id.substr(8, 4) + "-" + id.substr(12, 4) + "-" + id.substr(16, 4) +
         "-" + id.substr(20);
}

TEST(OutputsFormat, RecordPriority) {
  auto p = [](const std::string& line) { return record_priority(parse_obj(line)); };
  EXPECT_EQ(p(kAlertLine), Priority::kWarning);
  EXPECT_EQ(p(kOldAlertLine), Priority::kCritical);
  EXPECT_EQ(p(R"({"priority":"loud","type":"alert"})"), std::nullopt);
  EXPECT_EQ(p(R"({"type":"alert"})"), std::nullopt);
  EXPECT_EQ(p(kBypassLine), Priority::kCritical);
  EXPECT_EQ(p(R"({"severity":"low","type":"bypass"})"), Priority::kNotice);
  EXPECT_EQ(p(R"({"type":"output_error"})"), Priority::kError);
  EXPECT_EQ(p(R"({"type":"output_dropped"})"), Priority::kError);
  EXPECT_EQ(p(R"({"type":"output_recovered"})"), Priority::kNotice);
  EXPECT_EQ(p(R"({"severity":"medium","type":"bypass"})"), Priority::kWarning);
  EXPECT_EQ(p(R"({"type":"bypass"})"), Priority::kWarning);
  for (const char* t : {"loss", "log_error", "rules_error", "output_overflow"})
    EXPECT_EQ(p(std::string(R"({"type":")") + t + "\"}"), Priority::kError) << t;
  for (const char* t :
       {"command", "exec", "session_start", "session_end", "command_status", "noncmd_input"})
    EXPECT_EQ(p(std::string(R"({"type":")") + t + "\"}"), Priority::kInformational) << t;
  for (const char* t : {"seal", "start", "rotate", "key_change", "rules_loaded", "whatever"})
    EXPECT_EQ(p(std::string(R"({"type":")") + t + "\"}"), Priority::kDebug) << t;
  EXPECT_EQ(p(R"({"seq":1})"), std::nullopt);
  EXPECT_EQ(p(R"({"type":1})"), std::nullopt);
}

TEST(OutputsFormat, SeverityNumbers) {
  const Priority all[] = {Priority::kEmergency,     Priority::kAlert,   Priority::kCritical,
                          Priority::kError,         Priority::kWarning, Priority::kNotice,
                          Priority::kInformational, Priority::kDebug};
  const int syslog[] = {0, 1, 2, 3, 4, 5, 6, 7};
  const int otel[] = {21, 19, 18, 17, 13, 10, 9, 5};
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(syslog_severity(all[i]), syslog[i]);
    EXPECT_EQ(otel_severity_number(all[i]), otel[i]);
  }
}

TEST(OutputsFormat, Rfc3339Good) {
  EXPECT_EQ(rfc3339_ns("2026-11-28T15:33:30.541624062Z"), 1795880010541624062);
  EXPECT_EQ(rfc3339_ns("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(rfc3339_ns("1969-12-31T23:59:59.5Z"), -500000000);
  EXPECT_EQ(rfc3339_ns("2024-02-29T00:00:00Z"), int64_t{1709164800} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2000-02-29T00:00:00Z"), int64_t{951782400} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2026-11-28T16:33:30+01:00"), int64_t{1795880010} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2026-11-28T10:03:30-05:30"), int64_t{1795880010} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2026-11-28t15:33:30.1z"), 1795880010100000000);
  EXPECT_EQ(rfc3339_ns("2026-11-28 15:33:30Z"), int64_t{1795880010} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2026-11-28T15:33:30.1234567891Z"), 1795880010123456789);
  EXPECT_EQ(rfc3339_ns("2016-12-31T23:59:60Z"), int64_t{1483228800} * 1000000000);
  EXPECT_EQ(rfc3339_ns("2262-04-11T23:47:16.854775807Z"), std::numeric_limits<int64_t>::max());
}

TEST(OutputsFormat, Rfc3339Bad) {
  for (const char* s : {"",
                        "2026",
                        "2026-11-28",
                        "2026-11-28T15:33:30",
                        "2026-11-28T15:33Z",
                        "2026-02-29T00:00:00Z",
                        "1900-02-29T00:00:00Z",
                        "2026-13-01T00:00:00Z",
                        "2026-00-01T00:00:00Z",
                        "2026-11-00T00:00:00Z",
                        "2026-04-31T00:00:00Z",
                        "2026-11-28T24:00:00Z",
                        "2026-11-28T15:60:00Z",
                        "2026-11-28T15:33:61Z",
                        "2026-11-28T15:33:30.Z",
                        "2026-11-28T15:33:30Zjunk",
                        "2026-11-28T15:33:30+0100",
                        "2026-11-28T15:33:30+24:00",
                        "2026-11-28T15:33:30+01:60",
                        "2026-11-28T15:33:30+01",
                        "2026-11-28X15:33:30Z",
                        "2026/11/28T15:33:30Z",
                        "+026-11-28T15:33:30Z",
                        "2026-11-28T15:33:30.-1Z",
                        "2026-11-28T15:33:30.5 Z",
                        " 2026-11-28T15:33:30Z",
                        "2262-04-11T23:47:16.854775808Z",
                        "2263-01-01T00:00:00Z",
                        "9999-12-31T23:59:59Z",
                        "0000-01-01T00:00:00Z",
                        "1600-01-01T00:00:00Z",
                        "２０２６-11-28T15:33:30Z"})
    EXPECT_EQ(rfc3339_ns(s), std::nullopt) << s;
  EXPECT_EQ(rfc3339_ns(std::string("2026-11-28T15:33:30Z\0", 21)), std::nullopt);
  EXPECT_EQ(rfc3339_ns(std::string("2026-11-28T15:33:30\0Z", 21)), std::nullopt);
  // Every proper prefix of a valid time is invalid (and never read past its end).
  const std::string good = "2026-11-28T15:33:30.541624062+01:00";
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_EQ(rfc3339_ns(std::string_view(good.data(), n)), std::nullopt) << n;
  EXPECT_TRUE(rfc3339_ns(good).has_value());
}

TEST(OutputsFormat, RecordId) {
  EXPECT_EQ(record_id("abc"), "ba7816bf8f01cfea414140de5dae2223");  // SHA-256 test vector
  EXPECT_EQ(record_id("abc\n"), record_id("abc"));
  EXPECT_EQ(record_id(kCommandLine).size(), 32u);
  EXPECT_EQ(record_id(kCommandLine), record_id(std::string(kCommandLine)));
  EXPECT_NE(record_id(kCommandLine), record_id(kAlertLine));
}

TEST(OutputsFormat, FalcoAlertWithOutputFields) {
  std::string out = falco_json(parse_obj(kAlertLine), "vm");
  EXPECT_EQ(out, R"j({"hostname":"vm","output":"15:33:30.541700000: Warning shadow read by alice )j"
                 R"j((cmd=cat /etc/shadow)","output_fields":{"cmd.text":"cat /etc/shadow",)j"
                 R"j("evt.time":1795880010541700000,"proc.pid":4242,"shaudit.id":")j" +
                     record_id(kAlertLine) +
                     R"j(","user.name":"alice"},)j"
                     R"j("priority":"Warning","rule":"Read shadow file","source":"shaudit",)j"
                     R"j("tags":["filesystem","mitre_credential_access"],)j"
                     R"j("time":"2026-11-28T15:33:30.541700000Z","uuid":")j" +
                     uuid_of(kAlertLine) + "\"}");
  json::Object o = parse_payload(out);
  EXPECT_EQ(keys(o), (std::set<std::string>{"hostname", "output", "output_fields", "priority",
                                            "rule", "source", "tags", "time", "uuid"}));
  EXPECT_TRUE(o["output_fields"].is_object());
  EXPECT_TRUE(o["output_fields"].as_object()["evt.time"].is_int());
  EXPECT_TRUE(o["tags"].is_array());
  EXPECT_EQ(rfc3339_ns(o["time"].as_string()), 1795880010541700000);
  // Redelivery gives the same payload, uuid included.
  EXPECT_EQ(falco_json(parse_obj(kAlertLine), "vm"), out);
}

TEST(OutputsFormat, FalcoOldAlertGetsFallbackFields) {
  std::string out = falco_json(parse_obj(kOldAlertLine), "vm");
  EXPECT_EQ(out,
            R"j({"hostname":"vm","output":"15:33:30.000000000: Critical o",)j"
            R"j("output_fields":{"evt.time":1795880010000000000,"proc.pid":7,"session.id":"s1",)j"
            R"j("shaudit.id":")j" +
                record_id(kOldAlertLine) +
                R"j("},)j"
                R"j("priority":"Critical","rule":"r","source":"shaudit","tags":[],)j"
                R"j("time":"2026-11-28T15:33:30.000000000Z","uuid":")j" +
                uuid_of(kOldAlertLine) + "\"}");
  json::Object o = parse_payload(out);
  EXPECT_FALSE(o["output_fields"].as_object().empty());
}

TEST(OutputsFormat, FalcoNeverEmptyFieldsEvenForBareRecords) {
  json::Object o = parse_payload(falco_json(parse_obj(R"({"type":"alert"})"), ""));
  EXPECT_EQ(json::encode(o["output_fields"]),
            R"({"evt.time":0,"shaudit.id":")" + record_id(R"({"type":"alert"})") + "\"}");
  EXPECT_EQ(o["priority"].as_string(), "Warning");
  EXPECT_EQ(o["time"].as_string(), "1970-01-01T00:00:00.000000000Z");
  // Non-alert records still give a well-formed payload.
  o = parse_payload(falco_json(parse_obj(kBypassLine), "h1"));
  EXPECT_EQ(o["rule"].as_string(), "bypass");
  EXPECT_EQ(o["priority"].as_string(), "Critical");
  EXPECT_EQ(o["output"].as_string(), "15:33:31.000000000: Critical /tmp/.x/busybox sh -c id");
}

TEST(OutputsFormat, SlackAlert) {
  EXPECT_EQ(slack_json(parse_obj(kAlertLine), "vm"),
            R"j({"text":"*Read shadow file* (Warning)\n```\nuser: alice  host: vm  )j"
            R"j(session: 4fd7966485e0ab52\ncat /etc/shadow\n```"})j");
  // A command that tries to close the code block and ping the channel.
  std::string line = R"j({"output":"x","output_fields":{"cmd.text":"echo ```; <!channel> & rm"},)j"
                     R"j("priority":"Critical","rule":"R <1>","type":"alert"})j";
  std::string out = slack_json(parse_obj(line), "");
  EXPECT_EQ(out, R"j({"text":"*R &lt;1&gt;* (Critical)\n```\necho `)j" + kZwsp + "`" + kZwsp + "`" +
                     kZwsp + R"j(; &lt;!channel&gt; &amp; rm\n```"})j");
  json::Object o = parse_payload(out);
  EXPECT_EQ(keys(o), (std::set<std::string>{"text"}));
  const std::string& text = o["text"].as_string();
  size_t fences = 0;
  for (size_t p = text.find("```"); p != std::string::npos; p = text.find("```", p + 3)) ++fences;
  EXPECT_EQ(fences, 2u);
  // Without cmd.text the alert output goes in the code block.
  EXPECT_EQ(slack_json(parse_obj(kOldAlertLine), "vm"),
            R"j({"text":"*r* (Critical)\n```\nhost: vm  session: s1\no\n```"})j");
  // The user's name and the session are in the block too: no _italic_ or *bold* from them.
  EXPECT_EQ(slack_json(parse_obj(R"j({"output":"o","output_fields":{"evt.text":"a\nb",)j"
                                 R"j("user.name":"_x_"},"priority":"Notice","rule":"r",)j"
                                 R"j("session":"*s*","type":"alert"})j"),
                       ""),
            R"j({"text":"*r* (Notice)\n```\nuser: _x_  session: *s*\na\nb\n```"})j");
}

TEST(OutputsFormat, SlackOtherRecords) {
  EXPECT_EQ(slack_json(parse_obj(kCommandLine), "ignored"),
            R"j({"text":"*command* (Informational)\n```\nuser: alice  host: vm  )j"
            R"j(session: 4fd7966485e0ab52\ncat /etc/shadow\n```"})j");
  EXPECT_EQ(
      slack_json(parse_obj(kBypassLine), "h1"),
      R"j({"text":"*bypass* (Critical)\n```\nuser: root  host: h1\n/tmp/.x/busybox sh -c id\n```"})j");
  EXPECT_EQ(slack_json(parse_obj(kSealLine), "h1"),
            R"j({"text":"*seal* (Debug)\n```\nhost: h1\n```"})j");
  EXPECT_EQ(slack_json(parse_obj(R"j({"type":"seal"})j"), ""), R"j({"text":"*seal* (Debug)"})j");
  std::string out = slack_json(parse_obj(kNastyLine), "h1");
  EXPECT_EQ(out,
            R"j({"text":"*command* (Informational)\n```\nuser: bøb  host: h1  session: s\"1]\n)j"
            R"j(printf \"héllo `)j" +
                kZwsp + "`" + kZwsp + "`" + kZwsp + "x`" + kZwsp + "`" + kZwsp + "`" + kZwsp +
                R"j( ] \\ 'q'\" &lt;b&gt;&amp;\n```"})j");
  parse_payload(out);
  // Line breaks in a typed line stay on one line.
  EXPECT_EQ(slack_json(parse_obj(R"({"text":"a\nb\tc","type":"command"})"), ""),
            R"j({"text":"*command* (Informational)\n```\na b c\n```"})j");
  // Slack's markup in typed text stays inside the code block, escaped: no bold, no mention,
  // no link (issue 16).
  EXPECT_EQ(slack_json(parse_obj(R"j({"text":"*bold* <!channel> <http://x|y> a&b > c",)j"
                                 R"j("type":"command","user":"u_1_"})j"),
                       ""),
            R"j({"text":"*command* (Informational)\n```\nuser: u_1_\n)j"
            R"j(*bold* &lt;!channel&gt; &lt;http://x|y&gt; a&amp;b &gt; c\n```"})j");
}

TEST(OutputsFormat, LokiStreamsGroupedByLabels) {
  const std::string l1 =
      R"j({"audit.session":"7","host":"vm","seq":1,"time":"2026-11-28T15:33:30.000000001Z",)j"
      R"j("type":"command","user":"alice"})j";
  const std::string l2 = R"j({"seq":2,"time":"2026-11-28T15:33:31Z","type":"alert"})j";
  const std::string l3 =
      R"j({"audit.session":"7","host":"vm","seq":3,"time":"bad","type":"command",)j"
      R"j("user":"alice"})j";
  json::Object o1 = parse_obj(l1), o2 = parse_obj(l2), o3 = parse_obj(l3);
  std::string out =
      loki_push_json({{l1, &o1}, {l2, &o2}, {l3 + "\n", &o3}},
                     {"type", "host", "user", "audit.session", "k8s.pod"}, {{"env", "prod"}});
  EXPECT_EQ(
      out,
      R"j({"streams":[)j"
      R"j({"stream":{"audit_session":"7","env":"prod","host":"vm","job":"shaudit",)j"
      R"j("type":"command","user":"alice"},"values":[)j"
      R"j(["1795880010000000001","{\"audit.session\":\"7\",\"host\":\"vm\",\"seq\":1,)j"
      R"j(\"time\":\"2026-11-28T15:33:30.000000001Z\",\"type\":\"command\",\"user\":\"alice\"}"],)j"
      R"j(["1795880011000000000","{\"audit.session\":\"7\",\"host\":\"vm\",\"seq\":3,)j"
      R"j(\"time\":\"bad\",\"type\":\"command\",\"user\":\"alice\"}"]]},)j"
      R"j({"stream":{"env":"prod","job":"shaudit","type":"alert"},"values":[)j"
      R"j(["1795880011000000000","{\"seq\":2,\"time\":\"2026-11-28T15:33:31Z\",)j"
      R"j(\"type\":\"alert\"}"]]}]})j");
  json::Object body = parse_payload(out);
  EXPECT_EQ(keys(body), (std::set<std::string>{"streams"}));
  for (const auto& s : body["streams"].as_array()) {
    EXPECT_EQ(keys(s.as_object()), (std::set<std::string>{"stream", "values"}));
    for (const auto& v : s.as_object().at("values").as_array()) {
      ASSERT_EQ(v.as_array().size(), 2u);
      // Each value is the exact log line.
      EXPECT_TRUE(json::parse(v.as_array()[1].as_string()).ok());
    }
  }
}

TEST(OutputsFormat, LokiLabelNamesAndOverrides) {
  const std::string l = R"j({"1st":"x","a-b":true,"n":5,"type":"seal","x":[1]})j";
  json::Object o = parse_obj(l);
  EXPECT_EQ(loki_push_json({{l, &o}}, {"1st", "a-b", "n", "x", "missing"},
                           {{"job", "audit"}, {"team.name", "sec"}}),
            R"j({"streams":[{"stream":{"_1st":"x","a_b":"true","job":"audit","n":"5",)j"
            R"j("team_name":"sec"},"values":[["0","{\"1st\":\"x\",\"a-b\":true,\"n\":5,)j"
            R"j(\"type\":\"seal\",\"x\":[1]}"]]}]})j");
  EXPECT_EQ(loki_push_json({}, {}, {}), R"({"streams":[]})");
  // A dotted name reaches into an object field (an alert's container); a top-level field
  // whose name has the dot wins; what is no string, number or boolean gives no label.
  const std::string a =
      R"j({"container":{"id":"c1","namespace":"shop","pod":"web-0"},"k.x":"top","type":"alert"})j";
  json::Object ao = parse_obj(a);
  EXPECT_EQ(
      loki_push_json(
          {{a, &ao}},
          {"container.namespace", "container.pod", "k.x", "container", "container.pod.x", "type.x"},
          {}),
      R"j({"streams":[{"stream":{"container_namespace":"shop","container_pod":"web-0",)j"
      R"j("job":"shaudit","k_x":"top"},"values":[["0","{\"container\":{\"id\":\"c1\",)j"
      R"j(\"namespace\":\"shop\",\"pod\":\"web-0\"},\"k.x\":\"top\",\"type\":\"alert\"}"]]}]})j");
}

TEST(OutputsFormat, OtlpLogs) {
  const std::string l1 =
      R"j({"seq":1,"session":"s1","time":"2026-11-28T15:33:30.000000001Z","type":"command",)j"
      R"j("user":"alice"})j";
  const std::string l2 =
      R"j({"output_fields":{"user.name":"alice"},"priority":"Error","rule":"r \"x\"","seq":2,)j"
      R"j("time":"2026-11-28T15:33:31Z","type":"alert"})j";
  const std::string l3 = R"j({"type":"start"})j";
  json::Object o1 = parse_obj(l1), o2 = parse_obj(l2), o3 = parse_obj(l3);
  std::string out = otlp_logs_json({{l1, &o1}, {l2, &o2}, {l3, &o3}}, "vm", "shaudit");
  auto attr = [](const std::string& k, const std::string& v) {
    return R"({"key":")" + k + R"(","value":{"stringValue":")" + v + R"("}})";
  };
  EXPECT_EQ(out, R"j({"resourceLogs":[{"resource":{"attributes":[)j" +
                     attr("service.name", "shaudit") + "," + attr("host.name", "vm") +
                     R"j(]},"scopeLogs":[{"logRecords":[)j"
                     // record 1
                     R"j({"attributes":[)j" +
                     attr("shaudit.type", "command") +
                     R"j(,{"key":"shaudit.seq","value":{"intValue":"1"}},)j" +
                     attr("shaudit.id", record_id(l1)) + "," + attr("user.name", "alice") + "," +
                     attr("session.id", "s1") +
                     R"j(],"body":{"stringValue":"{\"seq\":1,\"session\":\"s1\",)j"
                     R"j(\"time\":\"2026-11-28T15:33:30.000000001Z\",\"type\":\"command\",)j"
                     R"j(\"user\":\"alice\"}"},"observedTimeUnixNano":"1795880010000000001",)j"
                     R"j("severityNumber":9,"severityText":"Informational",)j"
                     R"j("timeUnixNano":"1795880010000000001"},)j"
                     // record 2
                     R"j({"attributes":[)j" +
                     attr("shaudit.type", "alert") +
                     R"j(,{"key":"shaudit.seq","value":{"intValue":"2"}},)j" +
                     attr("shaudit.id", record_id(l2)) + "," + attr("user.name", "alice") + "," +
                     attr("shaudit.rule", R"(r \"x\")") +
                     R"j(],"body":{"stringValue":"{\"output_fields\":{\"user.name\":\"alice\"},)j"
                     R"j(\"priority\":\"Error\",\"rule\":\"r \\\"x\\\"\",\"seq\":2,)j"
                     R"j(\"time\":\"2026-11-28T15:33:31Z\",\"type\":\"alert\"}"},)j"
                     R"j("observedTimeUnixNano":"1795880011000000000","severityNumber":17,)j"
                     R"j("severityText":"Error","timeUnixNano":"1795880011000000000"},)j"
                     // record 3: no time, no seq
                     R"j({"attributes":[)j" +
                     attr("shaudit.type", "start") + "," + attr("shaudit.id", record_id(l3)) +
                     R"j(],"body":{"stringValue":"{\"type\":\"start\"}"},"severityNumber":5,)j"
                     R"j("severityText":"Debug"}],"scope":{"name":"shaudit"}}]}]})j");
  json::Object body = parse_payload(out);
  EXPECT_EQ(keys(body), (std::set<std::string>{"resourceLogs"}));
  const auto& rl = body["resourceLogs"].as_array().at(0).as_object();
  EXPECT_EQ(keys(rl), (std::set<std::string>{"resource", "scopeLogs"}));
  const auto& sl = rl.at("scopeLogs").as_array().at(0).as_object();
  EXPECT_EQ(keys(sl), (std::set<std::string>{"logRecords", "scope"}));
  const auto& lr = sl.at("logRecords").as_array().at(0).as_object();
  EXPECT_EQ(keys(lr), (std::set<std::string>{"attributes", "body", "observedTimeUnixNano",
                                             "severityNumber", "severityText", "timeUnixNano"}));
  EXPECT_TRUE(lr.at("timeUnixNano").is_string());
  EXPECT_TRUE(lr.at("severityNumber").is_int());
  EXPECT_EQ(lr.at("body").as_object().at("stringValue").as_string(), l1);
}

TEST(OutputsFormat, Syslog5424) {
  json::Object cmd = parse_obj(kCommandLine);
  EXPECT_EQ(syslog5424(cmd, kCommandLine, "vm", "shauditd", 13),
            "<110>1 2026-11-28T15:33:30.541624Z vm shauditd 4242 command [shaudit@32473 id=\"" +
                record_id(kCommandLine) +
                "\" type=\"command\" seq=\"12\" session=\"4fd7966485e0ab52\" user=\"alice\" "
                "uid=\"1000\"] " +
                kBom + kCommandLine);
  // Alert: priority Warning (4), facility 4 (auth): PRI 36; user from output_fields.
  json::Object alert = parse_obj(kAlertLine);
  EXPECT_EQ(syslog5424(alert, kAlertLine + "\n", "vm", "shauditd", 4),
            "<36>1 2026-11-28T15:33:30.541700Z vm shauditd 4242 alert [shaudit@32473 id=\"" +
                record_id(kAlertLine) +
                "\" type=\"alert\" seq=\"13\" session=\"4fd7966485e0ab52\" user=\"alice\" "
                "rule=\"Read shadow file\"] " +
                kBom + kAlertLine);
  // Escapes in SD values, sanitised header fields, out-of-range facility.
  json::Object nasty = parse_obj(kNastyLine);
  EXPECT_EQ(syslog5424(nasty, kNastyLine, "bad host\xFF", std::string(60, 'a'), 99),
            "<110>1 2026-11-28T15:33:33.999999Z bad_host_ " + std::string(48, 'a') +
                " 77 command [shaudit@32473 id=\"" + record_id(kNastyLine) +
                "\" type=\"command\" seq=\"30\" session=\"s\\\"1\\]\" user=\"b\xC3\xB8" +
                "b\" uid=\"1001\"] " + kBom + kNastyLine);
  // Seal: Debug (7), no pid, no user; empty host and app name.
  json::Object seal = parse_obj(kSealLine);
  EXPECT_EQ(syslog5424(seal, kSealLine, "", "", 1),
            "<15>1 2026-11-28T15:33:32.123456Z - - - seal [shaudit@32473 id=\"" +
                record_id(kSealLine) + "\" type=\"seal\" seq=\"20\"] " + kBom + kSealLine);
  // Missing time and type.
  json::Object bare = parse_obj(R"({"seq":1})");
  EXPECT_EQ(syslog5424(bare, R"({"seq":1})", "h", "a", 1),
            "<12>1 - h a - - [shaudit@32473 id=\"" + record_id(R"({"seq":1})") + "\" seq=\"1\"] " +
                kBom + "{\"seq\":1}");
  // RFC 5424 6.4: a MSG in UTF-8 starts with the BOM; an empty line gives no MSG at all.
  EXPECT_EQ(syslog5424(bare, "", "h", "a", 1),
            "<12>1 - h a - - [shaudit@32473 id=\"" + record_id("") + "\" seq=\"1\"]");
}

TEST(OutputsFormat, AuditNv) {
  EXPECT_EQ(audit_nv("user", "alice"), "user=\"alice\"");
  EXPECT_EQ(audit_nv("cmd", "ls -l"), "cmd=6C73202D6C");
  EXPECT_EQ(audit_nv("x", "a\"b"), "x=612262");
  EXPECT_EQ(audit_nv("x", "it's"), "x=69742773");
  EXPECT_EQ(audit_nv("x", "b\xC3\xB8"), "x=62C3B8");
  EXPECT_EQ(audit_nv("x", "\x7F"), "x=7F");
  EXPECT_EQ(audit_nv("x", "tab\there"), "x=7461620968657265");
  EXPECT_EQ(audit_nv("x", ""), "x=\"\"");
  EXPECT_EQ(audit_nv("x", "a=b]\\"), "x=613D625D5C");  // "=" could pose as a field
}

TEST(OutputsFormat, AuditMessage) {
  EXPECT_EQ(audit_message(parse_obj(kCommandLine)),
            "shaudit_type=command shaudit_session=\"4fd7966485e0ab52\" user=\"alice\" uid=1000 "
            "loginuid=1000 audit_session=7 pid=4242 seq=12 shaudit_id=" +
                record_id(kCommandLine) +
                " shaudit_command=\"4242.3\" cmd=636174202F6574632F736861646F77");
  EXPECT_EQ(audit_message(parse_obj(kAlertLine)),
            "shaudit_type=alert shaudit_session=\"4fd7966485e0ab52\" user=\"alice\" pid=4242 "
            "seq=13 shaudit_id=" +
                record_id(kAlertLine) +
                " info=5265616420736861646F772066696C65 priority=Warning "
                "cmd=636174202F6574632F736861646F77");
  // An alert as the alerter writes it now, with the acting user's identity copied from the
  // record it matched: uid= (what `ausearch -ui` reads) and loginuid=, as for the command.
  const std::string alert_with_uid =
      R"j({"audit_session":"7","loginuid":"1000","output":"o",)j"
      R"j("output_fields":{"evt.text":"cat /etc/shadow"},"pid":4242,"priority":"Critical",)j"
      R"j("rule":"Read shadow file","seq":13,"session":"s1","type":"alert","uid":1000,)j"
      R"j("user":"alice"})j";
  EXPECT_EQ(audit_message(parse_obj(alert_with_uid)),
            "shaudit_type=alert shaudit_session=\"s1\" user=\"alice\" uid=1000 loginuid=1000 "
            "audit_session=7 pid=4242 seq=13 shaudit_id=" +
                record_id(alert_with_uid) +
                " info=5265616420736861646F772066696C65 priority=Critical "
                "cmd=636174202F6574632F736861646F77");
  EXPECT_EQ(audit_message(parse_obj(kBypassLine)),
            "shaudit_type=bypass user=\"root\" uid=0 pid=999 seq=14 shaudit_id=" +
                record_id(kBypassLine) +
                " kind=unhooked_process cmd=2F746D702F2E782F62757379626F78207368202D63206964");
  EXPECT_EQ(audit_message(parse_obj(kNastyLine)),
            "shaudit_type=command shaudit_session=7322315D user=62C3B862 uid=1001 pid=77 seq=30 "
            "shaudit_id=" +
                record_id(kNastyLine) +
                " cmd=7072696E7466202268C3A96C6C6F2060606078606060205D205C2027712722203C623E26");
  const std::string exec1 =
      R"({"argv":["ls","-l"],"path":"/usr/bin/ls","pid":5,"ppid":4,"seq":3,"type":"exec"})";
  EXPECT_EQ(audit_message(parse_obj(exec1)),
            "shaudit_type=exec pid=5 seq=3 shaudit_id=" + record_id(exec1) + " cmd=6C73202D6C");
  const std::string exec2 = R"({"argv":["id"],"type":"exec"})";
  EXPECT_EQ(audit_message(parse_obj(exec2)),
            "shaudit_type=exec shaudit_id=" + record_id(exec2) + " cmd=\"id\"");
  // The seal has no identity and no command.
  EXPECT_EQ(audit_message(parse_obj(kSealLine)),
            "shaudit_type=seal seq=20 shaudit_id=" + record_id(kSealLine));
}

TEST(OutputsFormat, AuditMessageCutsLongCommands) {
  json::Object o;
  o["type"] = "command";
  o["text"] = std::string(5000, 'a');
  std::string m = audit_message(o);
  EXPECT_NE(m.find(" cmd=\"" + std::string(2048, 'a') + "\" cmd_len=5000"), std::string::npos) << m;
  // A typed line that is not UTF-8 is sent as its exact bytes.
  o["text"] = "\xEF\xBF\xBD";
  o["text_b64"] = "/w==";  // the byte 0xFF
  EXPECT_NE(audit_message(o).find(" cmd=FF"), std::string::npos);
}

TEST(OutputsFormat, MistypedFieldsNeverThrow) {
  const std::string weird =
      R"j({"argv":"notalist","host":5,"output":7,"output_fields":"x","pid":"p","priority":3,)j"
      R"j("rule":[1],"seq":"s","session":{},"tags":"t","text":null,"time":12,"type":"alert",)j"
      R"j("uid":"u","user":false})j";
  json::Object o = parse_obj(weird);
  parse_payload(falco_json(o, "h"));
  parse_payload(slack_json(o, "h"));
  parse_payload(loki_push_json({{weird, &o}}, {"host", "user", "type"}, {}));
  parse_payload(otlp_logs_json({{weird, &o}}, "h", "s"));
  EXPECT_FALSE(syslog5424(o, weird, "h", "a", 1).empty());
  EXPECT_FALSE(audit_message(o).empty());
  // Mistyped fields are left out; a string seq or uid is still shown as text.
  EXPECT_EQ(syslog5424(o, weird, "h", "a", 1),
            "<12>1 - h a - alert [shaudit@32473 id=\"" + record_id(weird) +
                "\" type=\"alert\" seq=\"s\" uid=\"u\"] " + kBom + weird);
  EXPECT_EQ(audit_message(o),
            "shaudit_type=alert uid=u shaudit_id=" + record_id(weird) + " priority=Warning");
  json::Object empty;
  parse_payload(falco_json(empty, ""));
  parse_payload(slack_json(empty, ""));
  EXPECT_EQ(audit_message(empty), "shaudit_id=" + record_id("{}"));
}

}  // namespace
}  // namespace shaudit::outfmt
