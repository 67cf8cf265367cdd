// SPDX-License-Identifier: Apache-2.0
#include "shaudit/config.h"

#include <gtest/gtest.h>

#include <string>

#include "internal/test_util.h"

namespace shaudit {
namespace {

using shaudit::testing::TempDir;
using shaudit::testing::write_file;

// The error text for yaml (and a test failure if it is accepted).
std::string config_error(const std::string& yaml, const std::string& source = "src") {
  auto r = parse_config(yaml, source);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << yaml;
  return r.ok() ? std::string() : r.message();
}

Config parsed(const std::string& yaml) {
  auto r = parse_config(yaml, "src");
  EXPECT_TRUE(r.ok()) << yaml << "\n=> " << (r.ok() ? "" : r.message());
  return r.ok() ? *r : Config{};
}

void expect_defaults(const Config& c) {
  EXPECT_EQ(c.socket, "/run/shaudit/shaudit.sock");
  EXPECT_EQ(c.socket_mode, 0666u);
  EXPECT_EQ(c.socket_group, "");
  EXPECT_EQ(c.control_socket, "/run/shaudit/control.sock");
  EXPECT_EQ(c.log, "/var/log/shaudit/audit.jsonl");
  EXPECT_EQ(c.signing_key, "/etc/shaudit/signing.key");
  EXPECT_EQ(c.bpf, BpfMode::kAuto);
  EXPECT_EQ(c.seal_interval_ms, 100u);
  EXPECT_EQ(c.seal_every, 10000u);
  EXPECT_EQ(c.queue_capacity, 65536u);
  EXPECT_EQ(c.max_clients, 4096u);
  EXPECT_EQ(c.max_clients_per_uid, 256u);
  EXPECT_EQ(c.client_queue_bytes, 1u << 20);
  EXPECT_EQ(c.interposer, kDefaultInterposer);
  EXPECT_EQ(c.shutdown_timeout_ms, 10000u);
  EXPECT_EQ(c.receiver_batch_us, 500u);
}

const char kKnownKeys[] =
    "bpf, bpf_ringbuf_kib, client_queue_bytes, client_queue_quota, container_state_dirs, "
    "control_socket, "
    "crosscheck_window_ms, enforce, forward_secure, interposer, log, "
    "max_clients, max_clients_per_uid, outputs, "
    "queue_capacity, receiver_batch_us, redact_patterns, retention, rules, seal_epoch_s, "
    "seal_every, "
    "seal_interval_ms, "
    "shutdown_timeout_ms, "
    "signing_key, "
    "socket, socket_group, socket_mode, state_dir, unhooked_allowlist";

TEST(Config, EmptyDocumentGivesDefaults) {
  expect_defaults(parsed(""));
  expect_defaults(parsed("# nothing but a comment\n"));
  expect_defaults(parsed("---\n"));
  expect_defaults(Config{});
}

TEST(Config, CompiledInDefaultParsesToTheDefaults) {
  auto r = parse_config(kDefaultConfigYaml, "<default>");
  ASSERT_TRUE(r.ok()) << r.message();
  expect_defaults(*r);
}

TEST(Config, EveryKey) {
  Config c = parsed(
      "socket: /tmp/a.sock\n"
      "socket_mode: \"0660\"\n"
      "socket_group: audit\n"
      "control_socket: /tmp/ctl.sock\n"
      "log: /srv/log/audit.jsonl\n"
      "signing_key: /srv/keys/k\n"
      "bpf: off\n"
      "seal_interval_ms: 250\n"
      "seal_every: 7\n"
      "queue_capacity: 16\n"
      "max_clients: 1000000\n"
      "shutdown_timeout_ms: 0\n");
  EXPECT_EQ(c.socket, "/tmp/a.sock");
  EXPECT_EQ(c.socket_mode, 0660u);
  EXPECT_EQ(c.socket_group, "audit");
  EXPECT_EQ(c.control_socket, "/tmp/ctl.sock");
  EXPECT_EQ(c.log, "/srv/log/audit.jsonl");
  EXPECT_EQ(c.signing_key, "/srv/keys/k");
  EXPECT_EQ(c.bpf, BpfMode::kOff);
  EXPECT_EQ(c.seal_interval_ms, 250u);
  EXPECT_EQ(c.seal_every, 7u);
  EXPECT_EQ(c.queue_capacity, 16u);
  EXPECT_EQ(c.max_clients, 1000000u);
  EXPECT_EQ(c.shutdown_timeout_ms, 0u);
}

TEST(Config, KeysNotGivenKeepDefaults) {
  Config c = parsed("log: /x/y.jsonl\n");
  EXPECT_EQ(c.log, "/x/y.jsonl");
  EXPECT_EQ(c.socket, "/run/shaudit/shaudit.sock");
  EXPECT_EQ(c.seal_every, 10000u);
  EXPECT_EQ(c.bpf, BpfMode::kAuto);
}

TEST(Config, BpfValues) {
  EXPECT_EQ(parsed("bpf: on\n").bpf, BpfMode::kOn);
  EXPECT_EQ(parsed("bpf: true\n").bpf, BpfMode::kOn);
  EXPECT_EQ(parsed("bpf: off\n").bpf, BpfMode::kOff);
  EXPECT_EQ(parsed("bpf: false\n").bpf, BpfMode::kOff);
  EXPECT_EQ(parsed("bpf: auto\n").bpf, BpfMode::kAuto);
  EXPECT_EQ(parsed("bpf: \"on\"\n").bpf, BpfMode::kOn);
  EXPECT_STREQ(bpf_mode_name(BpfMode::kOn), "on");
  EXPECT_STREQ(bpf_mode_name(BpfMode::kOff), "off");
  EXPECT_STREQ(bpf_mode_name(BpfMode::kAuto), "auto");
}

TEST(Config, BadBpfValue) {
  EXPECT_EQ(config_error("bpf: maybe\n"),
            "config src:1:6: key 'bpf': expected on, off or auto, got 'maybe'");
  EXPECT_EQ(config_error("bpf: ON\n"),
            "config src:1:6: key 'bpf': expected on, off or auto, got 'ON'");
  EXPECT_EQ(config_error("bpf: 1\n"),
            "config src:1:6: key 'bpf': expected on, off or auto, got '1'");
}

TEST(Config, SocketModes) {
  EXPECT_EQ(parsed("socket_mode: \"0600\"\n").socket_mode, 0600u);
  EXPECT_EQ(parsed("socket_mode: 0640\n").socket_mode, 0640u);  // unquoted: still octal
  EXPECT_EQ(parsed("socket_mode: 660\n").socket_mode, 0660u);
  EXPECT_EQ(parsed("socket_mode: \"0\"\n").socket_mode, 0u);
  EXPECT_EQ(parsed("socket_mode: \"0777\"\n").socket_mode, 0777u);
}

TEST(Config, BadSocketModes) {
  EXPECT_EQ(config_error("socket_mode: \"0999\"\n"),
            "config src:1:14: key 'socket_mode': expected an octal mode like \"0666\", got '0999'");
  EXPECT_EQ(config_error("socket_mode: rw-rw-rw-\n"),
            "config src:1:14: key 'socket_mode': expected an octal mode like \"0666\", got "
            "'rw-rw-rw-'");
  EXPECT_EQ(
      config_error("socket_mode: \"00666\"\n"),
      "config src:1:14: key 'socket_mode': expected an octal mode like \"0666\", got '00666'");
  EXPECT_EQ(config_error("socket_mode: \"\"\n"),
            "config src:1:14: key 'socket_mode': expected an octal mode like \"0666\", got ''");
  EXPECT_EQ(config_error("socket_mode: \"1777\"\n"),
            "config src:1:14: key 'socket_mode': mode 1777 has bits beyond 0777");
  EXPECT_EQ(config_error("socket_mode: -666\n"),
            "config src:1:14: key 'socket_mode': expected an octal mode like \"0666\", got '-666'");
}

TEST(Config, UnknownKeyNamesKeyAndPosition) {
  std::string e = config_error("socket: /a\nbogus_key: 1\n");
  EXPECT_EQ(
      e, std::string("config src:2:1: unknown key 'bogus_key' (known keys: ") + kKnownKeys + ")");
  // Indented in a flow mapping, the column is the key's.
  std::string e2 = config_error("{log: /a,  sael_every: 5}\n");
  EXPECT_NE(e2.find("unknown key 'sael_every'"), std::string::npos) << e2;
  EXPECT_NE(e2.find("src:1:12"), std::string::npos) << e2;
}

TEST(Config, Retention) {
  auto c = parse_config("retention: {max_age_days: 30, max_total_mib: 512}\n", "src");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->retention_max_age_days, 30u);
  EXPECT_EQ(c->retention_max_total_mib, 512u);
  auto d = parse_config("log: /a\n", "src");
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->retention_max_age_days, 0u);  // no limit: nothing is removed
  EXPECT_EQ(d->retention_max_total_mib, 0u);
  EXPECT_EQ(config_error("retention:\n  max_age_days: 3\n  max_files: 2\n"),
            "config src:3:3: retention: unknown key 'max_files' (known: max_age_days, "
            "max_total_mib)");
  EXPECT_EQ(config_error("retention: {max_total_mib: lots}\n"),
            "config src:1:28: retention: key 'max_total_mib': expected a whole number, got "
            "'lots'");
  EXPECT_EQ(config_error("retention: 30\n"),
            "config src:1:12: key 'retention' needs a mapping (max_age_days, max_total_mib)");
}

TEST(Config, Enforce) {
  auto d = parse_config("log: /a\n", "src");
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_FALSE(d->enforce);  // off by default
  EXPECT_EQ(d->enforce_lsm_file, "/sys/kernel/security/lsm");
  auto t = parse_config("enforce: true\n", "src");
  ASSERT_TRUE(t.ok()) << t.message();
  EXPECT_TRUE(t->enforce);
  auto f = parse_config("enforce: false\n", "src");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_FALSE(f->enforce);
  auto m = parse_config("enforce: {lsm_file: /tmp/lsm}\n", "src");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_TRUE(m->enforce);  // a mapping turns it on
  EXPECT_EQ(m->enforce_lsm_file, "/tmp/lsm");
  EXPECT_TRUE(m->enforce_protect);  // on with the enforcing mode unless told
  auto np = parse_config("enforce: {protect: false}\n", "src");
  ASSERT_TRUE(np.ok()) << np.message();
  EXPECT_TRUE(np->enforce);
  EXPECT_FALSE(np->enforce_protect);
  EXPECT_EQ(config_error("enforce: {protect: maybe}\n"),
            "config src:1:20: enforce: key 'protect': expected true or false, got 'maybe'");
  auto o = parse_config("enforce: {mode: off}\n", "src");
  ASSERT_TRUE(o.ok()) << o.message();
  EXPECT_FALSE(o->enforce);
  EXPECT_EQ(config_error("enforce:\n  mode: deny\n  pin: true\n"),
            "config src:3:3: enforce: unknown key 'pin' (known: mode, lsm_file, protect, fail, "
            "heartbeat_ms, break_glass, pin_root)");
  EXPECT_FALSE(t->enforce_fail_closed);  // fail: open by default
  EXPECT_EQ(t->enforce_heartbeat_ms, 1000u);
  auto fc = parse_config(
      "enforce: {mode: kill, fail: closed, heartbeat_ms: 200, break_glass: [/bin/true, /x/y]}\n",
      "src");
  ASSERT_TRUE(fc.ok()) << fc.message();
  EXPECT_TRUE(fc->enforce_fail_closed);
  EXPECT_EQ(fc->enforce_heartbeat_ms, 200u);
  EXPECT_EQ(fc->enforce_break_glass, (std::vector<std::string>{"/bin/true", "/x/y"}));
  EXPECT_EQ(config_error("enforce: {fail: maybe}\n"),
            "config src:1:17: enforce: key 'fail': expected open or closed, got 'maybe'");
  EXPECT_EQ(config_error("enforce: {heartbeat_ms: 5}\n"),
            "config src:1:25: enforce: key 'heartbeat_ms': 5 is out of range (100..600000)");
  EXPECT_EQ(config_error("enforce: {break_glass: [bin/true]}\n"),
            "config src:1:24: enforce: key 'break_glass': expected an absolute path, got "
            "'bin/true'");
  EXPECT_EQ(config_error("enforce: {break_glass: /bin/true}\n"),
            "config src:1:24: enforce: key 'break_glass': needs a list of absolute paths");
  EXPECT_EQ(config_error("enforce: {mode: block}\n"),
            "config src:1:17: enforce: key 'mode': expected deny, kill or off, got 'block'");
  auto k = parse_config("enforce: {mode: kill}\n", "src");
  ASSERT_TRUE(k.ok()) << k.message();
  EXPECT_TRUE(k->enforce);
  EXPECT_TRUE(k->enforce_kill);
  EXPECT_FALSE(k->enforce_protect);  // protect needs BPF LSM: off in the kill mode unless set
  auto kp = parse_config("enforce: {protect: true, mode: kill}\n", "src");
  ASSERT_TRUE(kp.ok()) << kp.message();
  EXPECT_TRUE(kp->enforce_kill);
  EXPECT_TRUE(kp->enforce_protect);
  EXPECT_FALSE(t->enforce_kill);  // enforce: true is the deny mode (BPF LSM)
  EXPECT_EQ(config_error("enforce: {lsm_file: lsm}\n"),
            "config src:1:21: enforce: key 'lsm_file': expected an absolute path, got 'lsm'");
  EXPECT_EQ(config_error("enforce: maybe\n"),
            "config src:1:10: key 'enforce': expected true, false or a mapping (mode, lsm_file, "
            "protect), "
            "got 'maybe'");
  EXPECT_EQ(
      config_error("enforce: [a]\n"),
      "config src:1:10: key 'enforce' needs true, false or a mapping (mode, lsm_file, protect)");
}

TEST(Config, MappingOrListForAScalarKey) {
  EXPECT_EQ(config_error("log:\n  a: b\n"),
            "config src:2:3: key 'log' needs a single value, not a mapping");
  EXPECT_EQ(config_error("seal_every: [1, 2]\n"),
            "config src:1:13: key 'seal_every' needs a single value, not a list");
  EXPECT_EQ(config_error("socket:\n  - /a\n"),
            "config src:2:3: key 'socket' needs a single value, not a list");
  EXPECT_EQ(config_error("log:\n"), "config src:2:1: key 'log' needs a single value, not a null");
}

TEST(Config, BadRedactPatternIsNamed) {
  EXPECT_EQ(config_error("redact_patterns: ['ok=(\\\\d+)', 'x(']\n"),
            "config src:1:32: key 'redact_patterns': redact pattern 'x(': missing ): x(");
  EXPECT_EQ(config_error("redact_patterns: ['(?<=a)b']\n"),
            "config src:1:19: key 'redact_patterns': redact pattern '(?<=a)b': invalid perl "
            "operator: (?<");
}

TEST(Config, BadNumbers) {
  EXPECT_EQ(config_error("seal_every: abc\n"),
            "config src:1:13: key 'seal_every': expected a whole number, got 'abc'");
  EXPECT_EQ(config_error("seal_every: -1\n"),
            "config src:1:13: key 'seal_every': expected a whole number, got '-1'");
  EXPECT_EQ(config_error("seal_every: 1.5\n"),
            "config src:1:13: key 'seal_every': expected a whole number, got '1.5'");
  EXPECT_EQ(config_error("seal_every: \"\"\n"),
            "config src:1:13: key 'seal_every': expected a whole number");
  EXPECT_EQ(config_error("max_clients: 99999999999999999999999\n"),
            "config src:1:14: key 'max_clients': number too large");
}

TEST(Config, OutOfRange) {
  EXPECT_EQ(config_error("seal_every: 0\n"),
            "config src:1:13: key 'seal_every': 0 is out of range (1..10000000)");
  EXPECT_EQ(config_error("seal_every: 10000001\n"),
            "config src:1:13: key 'seal_every': 10000001 is out of range (1..10000000)");
  EXPECT_EQ(config_error("seal_interval_ms: 60001\n"),
            "config src:1:19: key 'seal_interval_ms': 60001 is out of range (1..60000)");
  EXPECT_EQ(config_error("queue_capacity: 15\n"),
            "config src:1:17: key 'queue_capacity': 15 is out of range (16..100000000)");
  EXPECT_EQ(config_error("max_clients: 0\n"),
            "config src:1:14: key 'max_clients': 0 is out of range (1..1000000)");
  EXPECT_EQ(config_error("shutdown_timeout_ms: 3600001\n"),
            "config src:1:22: key 'shutdown_timeout_ms': 3600001 is out of range (0..3600000)");
  // The bounds themselves are accepted.
  EXPECT_EQ(parsed("seal_every: 10000000\n").seal_every, 10000000u);
  EXPECT_EQ(parsed("seal_interval_ms: 1\n").seal_interval_ms, 1u);
  EXPECT_EQ(parsed("shutdown_timeout_ms: 3600000\n").shutdown_timeout_ms, 3600000u);
}

TEST(Config, RelativePathsAreRefused) {
  EXPECT_EQ(config_error("log: var/log/audit.jsonl\n"),
            "config src:1:6: key 'log': expected an absolute path, got 'var/log/audit.jsonl'");
  EXPECT_EQ(config_error("socket: ./s.sock\n"),
            "config src:1:9: key 'socket': expected an absolute path, got './s.sock'");
  EXPECT_EQ(config_error("signing_key: \"\"\n"),
            "config src:1:14: key 'signing_key': expected an absolute path, got ''");
  EXPECT_EQ(config_error("control_socket: ~/ctl\n"),
            "config src:1:17: key 'control_socket': expected an absolute path, got '~/ctl'");
}

TEST(Config, DuplicateKeyIsRefused) {
  EXPECT_EQ(config_error("log: /a\nsocket: /s\nlog: /b\n"),
            "config src:3:1: duplicate key 'log' (first set at src:1:1)");
}

TEST(Config, YamlSyntaxErrorHasPosition) {
  EXPECT_EQ(config_error("socket: /a\nlog: [unclosed\n"),
            "config src:3:1: end of sequence flow not found");
  EXPECT_EQ(config_error("a: b: c\n"), "config src:1:5: illegal map value");
  EXPECT_EQ(config_error("socket: /a\n  bad indent: x\n"), "config src:2:13: illegal map value");
  EXPECT_EQ(config_error("log: *nowhere\n"),
            "config src:1:6: the referenced anchor is not defined");
}

TEST(Config, DocumentMustBeAMappingWithPlainKeys) {
  EXPECT_EQ(config_error("- a\n- b\n"), "config src:1:1: expected a mapping of keys to values");
  EXPECT_EQ(config_error("just a string\n"),
            "config src:1:1: expected a mapping of keys to values");
  EXPECT_EQ(config_error("[a]: 1\n"), "config src:1:1: keys must be plain names");
}

TEST(Config, LoadConfigReadsAFileAndNamesItInErrors) {
  TempDir dir;
  const std::string path = dir.file("shauditd.yaml");
  write_file(path, "log: /l/a.jsonl\nbpf: on\n", 0644);
  auto c = load_config(path);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->log, "/l/a.jsonl");
  EXPECT_EQ(c->bpf, BpfMode::kOn);

  write_file(path, "# comment\nlog: /l/a.jsonl\n  seal_every: 5\n", 0644);
  auto bad = load_config(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message().rfind("config " + path + ":3:", 0), 0u) << bad.message();

  write_file(path, "\nqueue_capacity: lots\n", 0644);
  auto bad2 = load_config(path);
  ASSERT_FALSE(bad2.ok());
  EXPECT_EQ(bad2.message(),
            "config " + path + ":2:17: key 'queue_capacity': expected a whole number, got 'lots'");
}

TEST(Config, LoadConfigOfMissingFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.file("missing.yaml");
  auto r = load_config(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "config " + path + ": cannot open: No such file or directory");
}

}  // namespace
}  // namespace shaudit

namespace shaudit {

TEST(Config, Outputs) {
  Config c = parsed(R"(state_dir: /var/lib/x
outputs:
  - name: siem
    type: webhook
    url: https://siem.example/in
    events: records
    minimum_priority: warning
    headers: {Authorization: "Bearer abc", X-Env: prod}
    batch_max: 50
    spool_max_mib: 8
  - type: loki
    url: http://127.0.0.1:3100/loki/api/v1/push
    tenant: team-a
    labels: [type, user]
  - type: slack
    url: https://hooks.slack.com/services/T/B/X
  - name: local
    type: file
    path: /var/log/shaudit/alerts.jsonl
    enabled: false
)");
  EXPECT_EQ(c.state_dir, "/var/lib/x");
  ASSERT_EQ(c.outputs.size(), 4u);
  const OutputConfig& w = c.outputs[0];
  EXPECT_EQ(w.name, "siem");
  EXPECT_EQ(w.type, OutputType::kWebhook);
  EXPECT_EQ(w.events, OutputEvents::kRecords);
  EXPECT_EQ(w.minimum_priority, "Warning");
  ASSERT_EQ(w.headers.size(), 2u);
  EXPECT_EQ(w.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer abc"}));
  EXPECT_EQ(w.batch_max, 50u);
  EXPECT_EQ(w.spool_max_mib, 8u);
  EXPECT_TRUE(w.seals);
  EXPECT_EQ(c.outputs[1].name, "loki");  // the type names an unnamed output
  EXPECT_EQ(c.outputs[1].tenant, "team-a");
  EXPECT_EQ(c.outputs[1].labels, (std::vector<std::string>{"type", "user"}));
  EXPECT_TRUE(c.outputs[1].gzip);
  EXPECT_FALSE(c.outputs[2].seals);  // no seals into a chat channel unless asked
  EXPECT_EQ(c.outputs[2].events, OutputEvents::kAlerts);
  EXPECT_FALSE(c.outputs[3].enabled);
}

TEST(Config, BadOutputsNameTheProblemAndPlace) {
  EXPECT_EQ(config_error("outputs:\n  - type: webhook\n"),
            "config src:2:5: outputs: output 'webhook' (webhook) needs 'url'");
  EXPECT_EQ(
      config_error("outputs:\n  - type: kafka\n"),
      "config src:2:11: outputs: unknown type 'kafka' (file, stdout, syslog, auditd, slack, loki, "
      "webhook, falcosidekick, otlp)");
  EXPECT_EQ(config_error("outputs:\n  - type: stdout\n    minimum_priority: loud\n"),
            "config src:3:23: outputs: key 'minimum_priority': unknown priority 'loud' (emergency, "
            "alert, critical, error, warning, notice, informational, debug)");
  EXPECT_EQ(config_error("outputs:\n  - type: stdout\n  - type: stdout\n"),
            "config src:3:5: outputs: two outputs named 'stdout': give each a 'name'");
  EXPECT_EQ(config_error("outputs:\n  - type: syslog\n    address: localhost\n"),
            "config src:3:14: outputs: key 'address': expected HOST:PORT, got 'localhost'");
  EXPECT_EQ(
      config_error("outputs:\n  - type: webhook\n    url: ftp://x/\n"),
      "config src:3:10: outputs: key 'url': expected an http:// or https:// URL, got 'ftp://x/'");
  EXPECT_EQ(config_error("outputs:\n  - type: webhook\n    url: http://x/\n    colour: red\n")
                .substr(0, 53),
            "config src:4:5: outputs: unknown key 'colour' (known:");
  EXPECT_EQ(config_error("outputs:\n  - name: ../x\n    type: stdout\n"),
            "config src:2:11: outputs: name '../x': use 1-64 of A-Z a-z 0-9 _ . - (it names the "
            "spool directory)");
  EXPECT_EQ(config_error("outputs: stdout\n"),
            "config src:1:10: key 'outputs' needs a list of outputs");
}

// The output keys come from a table; these pin the messages the if-chain before it gave.
TEST(Config, OutputKeyMessages) {
  EXPECT_EQ(config_error("outputs:\n  - type: stdout\n    colour: red\n"),
            "config src:3:5: outputs: unknown key 'colour' (known: address, app_name, batch_max, "
            "batch_wait_ms, ca_file, cert_file, enabled, events, facility, gzip, headers, "
            "key_file, labels, minimum_priority, name, path, protocol, retry_max_ms, seals, "
            "server_name, spool_max_mib, tenant, timeout_ms, tls_verify, type, url)");
  // A list or mapping where a single value belongs is reported before an unknown name.
  EXPECT_EQ(config_error("outputs:\n  - type: stdout\n    colour: [red]\n"),
            "config src:3:13: outputs: key 'colour' needs a single value");
  EXPECT_EQ(config_error("outputs:\n  - type: [stdout]\n"),
            "config src:2:11: outputs: key 'type' needs a single value");
  EXPECT_EQ(config_error("outputs:\n  - type: loki\n    url: http://x/\n    labels: type\n"),
            "config src:4:13: outputs: 'labels' needs a list of record field names");
  EXPECT_EQ(
      config_error("outputs:\n  - type: webhook\n    url: http://x/\n    headers: {a: [b]}\n"),
      "config src:4:15: outputs: 'headers': each header is NAME: VALUE");
  EXPECT_EQ(
      config_error("outputs:\n  - name: a\n    type: stdout\n  - name: a\n    type: stdout\n"),
      "config src:4:11: outputs: duplicate output name 'a' (first at src:2:11)");
  EXPECT_EQ(config_error("outputs:\n  - type: syslog\n    address: h:1\n    facility: 24\n"),
            "config src:4:15: outputs: key 'facility': 24 is out of range (0..23)");
  EXPECT_EQ(config_error("outputs:\n  - type: file\n"),
            "config src:2:5: outputs: output 'file' (file) needs 'path'");
  EXPECT_EQ(config_error("outputs:\n  - type: syslog\n"),
            "config src:2:5: outputs: output 'syslog' (syslog) needs 'address'");
  EXPECT_EQ(config_error("outputs:\n  - name: x\n"),
            "config src:2:5: outputs: an output needs 'type'");
  Config c = parsed(
      "outputs:\n  - type: slack\n    url: http://x/\n    seals: true\n"
      "  - type: stdout\n  - type: auditd\n");
  ASSERT_EQ(c.outputs.size(), 3u);
  EXPECT_TRUE(c.outputs[0].seals);
  EXPECT_TRUE(c.outputs[1].seals);
  EXPECT_EQ(c.outputs[2].name, "auditd");
  EXPECT_EQ(output_type_name(OutputType::kFalcosidekick), std::string("falcosidekick"));
}

}  // namespace shaudit
