// SPDX-License-Identifier: Apache-2.0
// shaudit-oci-runtime's parts without a runtime: the command line, the settings, the config.json
// edit (exact bytes out), the ELF checks against the host's own glibc and the interposer, the
// in-root lookups, and prepare_bundle on bundles built from the host's files.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "bundle.h"
#include "cmdline.h"
#include "elf_deps.h"
#include "files.h"
#include "image.h"
#include "internal/test_util.h"
#include "json_text.h"
#include "rootfs.h"
#include "settings.h"
#include "shaudit/config.h"

namespace shaudit::oci {
namespace {

namespace fs = std::filesystem;
using shaudit::testing::read_file;
using shaudit::testing::TempDir;
using shaudit::testing::write_file;

constexpr const char* kHostLoader = "/lib64/ld-linux-x86-64.so.2";
constexpr const char* kHostLibc = "/lib/x86_64-linux-gnu/libc.so.6";

// ---------------------------------------------------------------------------------------
// The command line

CommandLine cl(std::vector<std::string> args) {
  return parse_command_line(args);
}

TEST(CommandLine, ContainerdShimCreate) {
  auto c = cl({"--root", "/run/containerd/runc/k8s.io", "--log", "/run/x/log.json", "--log-format",
               "json", "--systemd-cgroup", "create", "--bundle", "/run/x/b", "--pid-file",
               "/run/x/init.pid", "--console-socket", "/tmp/pty.sock", "abc"});
  EXPECT_EQ(c.subcommand, "create");
  EXPECT_EQ(c.bundle, "/run/x/b");
  EXPECT_EQ(c.id, "abc");
  EXPECT_FALSE(c.help);
  EXPECT_TRUE(creates_container(c));
}

TEST(CommandLine, OptionSpellings) {
  EXPECT_EQ(cl({"--root=/r", "run", "-b", "/b", "-d", "x"}).bundle, "/b");
  EXPECT_EQ(cl({"create", "--bundle=/b", "x"}).bundle, "/b");
  EXPECT_EQ(cl({"-root", "/r", "create", "-bundle", "/b", "x"}).bundle, "/b");
  EXPECT_EQ(cl({"create", "-b=/b", "x"}).bundle, "/b");
  EXPECT_EQ(cl({"create", "--bundle=", "x"}).bundle, ".");  // runc: stay in the directory
  EXPECT_EQ(cl({"--rootless", "true", "--debug", "create", "x"}).subcommand, "create");
  EXPECT_EQ(cl({"--rootless", "true", "--debug", "create", "x"}).bundle, ".");
  EXPECT_EQ(cl({"--debug=false", "--criu", "/c", "run", "x"}).id, "x");
}

TEST(CommandLine, OptionsAfterTheIdAndTheDoubleDash) {
  auto c = cl({"create", "x", "--bundle", "/b"});  // urfave/cli reorders these
  EXPECT_EQ(c.id, "x");
  EXPECT_EQ(c.bundle, "/b");
  c = cl({"create", "--", "--bundle"});  // after "--" everything is an operand
  EXPECT_EQ(c.id, "--bundle");
  EXPECT_EQ(c.bundle, ".");
  c = cl({"--", "create", "x"});
  EXPECT_EQ(c.subcommand, "create");
}

TEST(CommandLine, PassThrough) {
  EXPECT_FALSE(creates_container(cl({"--version"})));
  EXPECT_TRUE(cl({"--version"}).help);
  EXPECT_EQ(cl({"--version"}).subcommand, "");
  EXPECT_FALSE(creates_container(cl({"create", "--help"})));
  EXPECT_FALSE(creates_container(cl({"-v"})));
  EXPECT_FALSE(creates_container(cl({})));
  for (const char* sub : {"start", "state", "kill", "delete", "exec", "features", "list", "ps"})
    EXPECT_FALSE(creates_container(cl({sub, "x"}))) << sub;
  auto d = cl({"--root", "/r", "delete", "--force", "x"});
  EXPECT_EQ(d.subcommand, "delete");
  EXPECT_EQ(d.id, "x");
}

TEST(CommandLine, ContainerdShimExec) {
  // containerd's runc v2 shim (go-runc): the process comes from a file.
  auto c = cl({"--root", "/run/containerd/runc/k8s.io", "--log", "/run/x/log.json", "--log-format",
               "json", "exec", "--process", "/tmp/runc-process123", "--detach", "--pid-file",
               "/run/x/e1.pid", "--console-socket", "/tmp/pty.sock", "abc"});
  EXPECT_EQ(c.subcommand, "exec");
  EXPECT_EQ(c.id, "abc");
  EXPECT_EQ(c.root, "/run/containerd/runc/k8s.io");
  EXPECT_EQ(c.process, "/tmp/runc-process123");
  EXPECT_TRUE(execs_process_file(c));
  EXPECT_FALSE(creates_container(c));
  EXPECT_EQ(cl({"--root=/r", "exec", "-p=/f", "x"}).process, "/f");
  EXPECT_EQ(cl({"--root=/r", "exec", "-p=/f", "x"}).root, "/r");
  EXPECT_EQ(cl({"-root", "/r", "exec", "-p", "/f", "x"}).root, "/r");
  // Options with values before the id; what follows the id is the command, its options too.
  c = cl(
      {"exec", "-t", "--env", "A=1", "-u", "0:0", "--cwd", "/", "x", "/bin/sh", "--process", "y"});
  EXPECT_EQ(c.id, "x");
  EXPECT_EQ(c.process, "");
  EXPECT_FALSE(execs_process_file(c));
  EXPECT_EQ(cl({"exec", "-e", "P=--process", "x", "sh"}).process, "");
  EXPECT_FALSE(execs_process_file(cl({"exec", "--process", "/f", "--help", "x"})));
  EXPECT_EQ(cl({"state", "x"}).root, "");
}

TEST(ContainerId, RuncRule) {
  EXPECT_TRUE(valid_container_id("0123abc_+-.X"));
  EXPECT_FALSE(valid_container_id(""));
  EXPECT_FALSE(valid_container_id("."));
  EXPECT_FALSE(valid_container_id(".."));
  EXPECT_FALSE(valid_container_id("a/b"));
  EXPECT_FALSE(valid_container_id("a b"));
}

// ---------------------------------------------------------------------------------------
// Settings

TEST(Settings, Keys) {
  auto s = parse_settings(
      "runtime: /usr/sbin/runc\nsocket: /run/s/d.sock\npreload: /p.so\npreload_musl: /m.so\n"
      "mode: opt-in\nstate_dir: /run/st\n",
      "f.yaml");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->runtime, "/usr/sbin/runc");
  EXPECT_EQ(s->socket, "/run/s/d.sock");
  EXPECT_EQ(s->preload, "/p.so");
  EXPECT_EQ(s->preload_musl, "/m.so");
  EXPECT_EQ(s->mode, Mode::kOptIn);
  EXPECT_EQ(s->state_dir, "/run/st");
}

TEST(Settings, Defaults) {
  auto s = parse_settings("runtime: /usr/bin/crun\npreload_musl: ~\n", "f.yaml");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->socket, "/run/shaudit/shaudit.sock");
  EXPECT_EQ(s->preload, kDefaultInterposer);
  EXPECT_EQ(s->preload_musl, "");
  EXPECT_EQ(s->mode, Mode::kAll);
  EXPECT_EQ(s->state_dir, "/run/shaudit-oci");
}

TEST(Settings, Errors) {
  auto msg = [](const std::string& yaml) {
    auto s = parse_settings(yaml, "f.yaml");
    return s.ok() ? std::string("ok") : s.message();
  };
  EXPECT_EQ(msg("socket: /run/s/d.sock\n"),
            "f.yaml: key 'runtime' (the real runtime, e.g. /usr/sbin/runc) is not set");
  EXPECT_EQ(msg("runtime: /r\nsokcet: /x\n"),
            "f.yaml:2:1: unknown key 'sokcet' (known: mode, preload, preload_musl, runtime, "
            "socket, state_dir)");
  EXPECT_EQ(msg("runtime: runc\n"),
            "f.yaml:1:10: key 'runtime': expected an absolute path, got 'runc'");
  EXPECT_EQ(msg("runtime: /r\nmode: some\n"),
            "f.yaml:2:7: key 'mode': expected all or opt-in, got 'some'");
  EXPECT_EQ(msg("- a\n"), "f.yaml:1:1: expected a mapping of settings (runtime: ..., ...)");
  EXPECT_EQ(msg("runtime: [\n"), "f.yaml:2:1: end of sequence flow not found");
}

// installer/system/oci-runtime.yaml.in, rendered as install.sh does, is what it says.
TEST(Settings, TheInstalledTemplate) {
  std::string text = read_file(SHAUDIT_SETTINGS_TEMPLATE);
  for (auto [from, to] :
       {std::pair{"@SBINDIR@", "/usr/sbin"}, std::pair{"@LIBDIR@", "/usr/lib/x86_64-linux-gnu"}})
    for (size_t at; (at = text.find(from)) != std::string::npos;)
      text.replace(at, std::string_view(from).size(), to);
  auto s = parse_settings(text, "oci-runtime.yaml");
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(s->runtime, "/usr/sbin/runc");
  EXPECT_EQ(s->socket, "/run/shaudit/shaudit.sock");
  EXPECT_EQ(s->mode, Mode::kAll);
  // Each commented key, uncommented, is a key at its default value.
  std::string all;
  for (size_t i = 0; i < text.size();) {
    size_t nl = text.find('\n', i);
    std::string line = text.substr(i, nl - i);
    i = nl == std::string::npos ? text.size() : nl + 1;
    if (line.size() > 1 && line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
        line.find(':') != std::string::npos)
      line.erase(0, 1);
    all += line + "\n";
  }
  auto d = parse_settings(all, "uncommented");
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->socket, s->socket);
  EXPECT_EQ(d->preload, "/usr/lib/x86_64-linux-gnu/libshaudit_preload.so");
  EXPECT_EQ(d->preload_musl, "");
  EXPECT_EQ(d->mode, Mode::kAll);
  EXPECT_EQ(d->state_dir, default_settings().state_dir);
}

TEST(Settings, RuntimeOfBrokenSettings) {
  TempDir t;
  write_file(t.file("a.yaml"), "runtime: /usr/bin/crun\nmode: sometimes\n");
  EXPECT_FALSE(load_settings(t.file("a.yaml")).ok());
  EXPECT_EQ(runtime_of_broken_settings(t.file("a.yaml")), "/usr/bin/crun");
  write_file(t.file("b.yaml"), "runtime: crun\n");
  EXPECT_EQ(runtime_of_broken_settings(t.file("b.yaml")), "");
  EXPECT_EQ(runtime_of_broken_settings(t.file("missing.yaml")), "");
  auto s = load_settings(t.file("missing.yaml"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cannot read " + t.file("missing.yaml") + ": No such file or directory");
}

// ---------------------------------------------------------------------------------------
// config.json, edited in place

TEST(JsonText, KeepsWhatSerializersWouldChange) {
  // Key order, spacing, floats, uint64 beyond int64, exponents, escapes.
  const std::string text =
      "{ \"z\": 1.5e3, \"rlimits\": [{\"hard\": 18446744073709551615}], \"a\": \"\\u00e9\\/\" ,"
      "\"n\": -0.0 }";
  auto doc = scan_json(text);
  ASSERT_TRUE(doc.ok()) << doc.message();
  ASSERT_EQ(doc->members.size(), 4u);
  EXPECT_EQ(doc->members[2].value.string, "\xc3\xa9/");
  JsonEdits e(text);
  e.update_object(*doc, {{"b", "true"}});
  auto out = e.apply();
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(*out,
            "{\"b\":true, \"z\": 1.5e3, \"rlimits\": [{\"hard\": 18446744073709551615}], "
            "\"a\": \"\\u00e9\\/\" ,\"n\": -0.0 }");
}

TEST(JsonText, RejectsWhatIsNotJson) {
  auto msg = [](std::string_view t) {
    auto d = scan_json(t);
    return d.ok() ? std::string("ok") : d.message();
  };
  EXPECT_EQ(msg("{\"a\": 01}"), "JSON error at byte 7: expected ',' or '}'");
  EXPECT_EQ(msg("{\"a\": 1.}"), "JSON error at byte 8: invalid number");
  EXPECT_EQ(msg("{\"a\": \"\xff\"}"),
            "JSON error at byte 6: invalid string (JSON error at byte 1: invalid UTF-8 in string)");
  EXPECT_EQ(msg("{\"a\": 1} x"), "JSON error at byte 9: unexpected data after the JSON value");
  EXPECT_EQ(msg(std::string(200, '[')), "JSON error at byte 128: nesting too deep");
  EXPECT_EQ(msg("[1,]"), "JSON error at byte 3: unexpected character 0x5d");
}

TEST(JsonText, FieldsAsGoMatchesThem) {
  auto doc = scan_json(R"({"mounts": [], "Annotations": {}, "env": 1, "ENV": 2, "ſtate": 3})");
  ASSERT_TRUE(doc.ok());
  auto m = struct_field(*doc, "mounts");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->key, "mounts");
  EXPECT_EQ(struct_field(*doc, "root").value(), nullptr);
  EXPECT_EQ(struct_field(*doc, "annotations").message(),
            "\"annotations\" is spelled \"Annotations\"");
  EXPECT_EQ(struct_field(*doc, "env").message(), "\"env\" is there twice (\"env\", \"ENV\")");
  EXPECT_EQ(struct_field(*doc, "state").message(), "\"state\" is spelled \"ſtate\"");
  auto dup = scan_json(R"({"a": "1", "a": "2"})");
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(map_entry(*dup, "a").message(), "\"a\" is there more than once");
}

std::string edited(const std::string& text,
                   const std::function<void(JsonEdits&, const JsonNode&)>& f) {
  auto doc = scan_json(text);
  EXPECT_TRUE(doc.ok()) << doc.message();
  JsonEdits e(text);
  f(e, *doc);
  auto out = e.apply();
  EXPECT_TRUE(out.ok()) << out.message();
  return out.ok() ? *out : out.message();
}

TEST(JsonText, UpdateObject) {
  using C = std::vector<JsonEdits::MemberChange>;
  auto upd = [](C changes) {
    return [changes](JsonEdits& e, const JsonNode& d) { e.update_object(d, changes); };
  };
  EXPECT_EQ(edited("{}", upd({{"a", "1"}, {"b", "2"}})), R"({"a":1,"b":2})");
  EXPECT_EQ(edited("{ }", upd({{"a", "1"}, {"x", std::nullopt}})), R"({"a":1 })");
  EXPECT_EQ(edited(R"({"a": 0, "b": 0})", upd({{"b", "[]"}})), R"({"a": 0, "b": []})");
  EXPECT_EQ(edited(R"({"a": 0, "b": 0, "c": 0})", upd({{"b", std::nullopt}})),
            R"({"a": 0, "c": 0})");
  EXPECT_EQ(edited(R"({"a": 0, "b": 0, "c": 0})", upd({{"c", std::nullopt}})),
            R"({"a": 0, "b": 0})");
  EXPECT_EQ(edited(R"({"a": 0, "b": 0, "c": 0})", upd({{"a", std::nullopt}})),
            R"({"b": 0, "c": 0})");
  EXPECT_EQ(edited(R"({"a": 0, "b": 0})", upd({{"a", std::nullopt}, {"b", std::nullopt}})), "{}");
  EXPECT_EQ(edited(R"({"r": "x"})", upd({{"r", std::nullopt}, {"i", R"("none")"}})),
            R"({"i":"none"})");
  EXPECT_EQ(edited(R"({ "k": 1, "r": "x" })", upd({{"r", std::nullopt}, {"i", "2"}})),
            R"({"i":2, "k": 1 })");
}

TEST(JsonText, AppendItemsAndReplace) {
  auto app = [](std::vector<std::string> items) {
    return [items](JsonEdits& e, const JsonNode& d) { e.append_items(d.members[0].value, items); };
  };
  EXPECT_EQ(edited(R"({"a": []})", app({"1", "2"})), R"({"a": [1,2]})");
  EXPECT_EQ(edited("{\"a\": [\n\t0\n]}", app({"1"})), "{\"a\": [\n\t0,1\n]}");
  EXPECT_EQ(edited(R"({"a": [0]})", app({})), R"({"a": [0]})");
  EXPECT_EQ(edited(R"({"a": ["x", "y"]})",
                   [](JsonEdits& e, const JsonNode& d) {
                     e.replace_value(d.members[0].value.items[1], R"("z")");
                     e.append_items(d.members[0].value, {R"("w")"});
                   }),
            R"({"a": ["x", "z","w"]})");
  // Two edits of the same bytes are refused rather than guessed at.
  auto doc = scan_json(R"({"a": []})");
  JsonEdits e(R"({"a": []})");
  e.append_items(doc->members[0].value, {"1"});
  e.append_items(doc->members[0].value, {"2"});
  EXPECT_EQ(e.apply().message(), "internal error: overlapping edits at byte 7");
}

// ---------------------------------------------------------------------------------------
// ELF

Result<ElfDeps> deps_of(const std::string& path) {
  internal::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error("cannot open " + path);
  return read_elf_deps(fd.get());
}

// The versions the interposer needs from libc.so.6 (a sanitizer build needs more libraries).
std::vector<std::string> libc_versions_needed() {
  auto d = deps_of(SHAUDIT_TEST_INTERPOSER);
  if (!d) return {};
  for (const auto& [file, versions] : d->version_needs)
    if (file == "libc.so.6") return versions;
  return {};
}

TEST(ElfDeps, TheInterposerNeedsLibcVersions) {
  auto d = deps_of(SHAUDIT_TEST_INTERPOSER);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->machine, EM_X86_64);
  EXPECT_EQ(d->elf_class, ELFCLASS64);
  EXPECT_EQ(d->needed.back(), "libc.so.6");
  const auto v = libc_versions_needed();
  EXPECT_NE(std::find(v.begin(), v.end(), "GLIBC_2.2.5"), v.end());
}

TEST(ElfDeps, TheHostLibcDefinesThem) {
  auto libc = deps_of(kHostLibc);
  ASSERT_TRUE(libc.ok()) << libc.message();
  EXPECT_EQ(libc->version_defs.front(), "libc.so.6");
  for (const auto& v : libc_versions_needed())
    EXPECT_NE(std::find(libc->version_defs.begin(), libc->version_defs.end(), v),
              libc->version_defs.end())
        << v;
}

TEST(ElfDeps, OtherFiles) {
  TempDir t;
  write_file(t.file("text"), "#!/bin/sh\nexec /bin/true\n");
  EXPECT_EQ(deps_of(t.file("text")).message(), "not an ELF file");
  write_file(t.file("short"),
             "\x7f"
             "ELF");
  EXPECT_EQ(deps_of(t.file("short")).message(), "not an ELF file (too short)");
  // A 32-bit big-endian header for another machine: its machine, nothing else.
  std::string h(64, '\0');
  h.replace(0, 4,
            "\x7f"
            "ELF");
  h[EI_CLASS] = ELFCLASS32;
  h[EI_DATA] = ELFDATA2MSB;
  h[18] = 0;
  h[19] = static_cast<char>(EM_PPC);
  write_file(t.file("ppc"), h);
  auto d = deps_of(t.file("ppc"));
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->machine, EM_PPC);
  EXPECT_TRUE(d->needed.empty());
  // A 64-bit header whose program headers point past the end.
  std::string bad = read_file(SHAUDIT_TEST_INTERPOSER).substr(0, 64);
  write_file(t.file("cut"), bad);
  EXPECT_EQ(deps_of(t.file("cut")).message(), "truncated ELF file");
}

// ---------------------------------------------------------------------------------------
// Lookups inside a root filesystem

class RootFsTest : public ::testing::TestWithParam<RootFs::Resolver> {};

TEST_P(RootFsTest, SymlinksStayInside) {
  TempDir t;
  fs::create_directories(t.file("root/etc"));
  fs::create_directories(t.file("root/lib/x"));
  write_file(t.file("secret"), "host secret\n");
  write_file(t.file("root/secret"), "image file\n");
  // Absolute and relative links that would leave the root if the host followed them.
  fs::create_symlink("/secret", t.file("root/etc/abs"));
  fs::create_symlink("../../../../../../secret", t.file("root/etc/rel"));
  fs::create_symlink(t.file("secret"), t.file("root/etc/hostpath"));
  fs::create_symlink("lib", t.file("root/lib64"));
  fs::create_symlink("loop", t.file("root/loop"));
  ::mkfifo(t.file("root/etc/fifo").c_str(), 0644);
  auto r = RootFs::open(t.file("root"), GetParam());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->read_file("/etc/abs", 100).value(), "image file\n");
  EXPECT_EQ(r->read_file("/etc/rel", 100).value(), "image file\n");
  EXPECT_EQ(r->read_file("/etc/hostpath", 100).value(), std::nullopt);  // not in the image
  EXPECT_EQ(r->read_file("/../../secret", 100).value(), "image file\n");
  EXPECT_EQ(r->read_file("/missing/x", 100).value(), std::nullopt);
  EXPECT_EQ(r->read_file("/secret/x", 100).value(), std::nullopt);  // below a file
  EXPECT_EQ(r->read_file("/etc/fifo", 100).message(),
            "/etc/fifo in the image is not a regular file");  // and it did not block
  EXPECT_EQ(r->read_file("/secret", 4).message(), "/secret in the image is larger than 4 bytes");
  auto l = r->lookup("/lib64/x");
  ASSERT_TRUE(l.ok() && *l);
  EXPECT_TRUE(S_ISDIR((*l)->st.st_mode));
  EXPECT_FALSE(r->lookup("/loop").ok());  // ELOOP
  auto names = r->list_dir("/lib64");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"x"});
  EXPECT_TRUE(r->list_dir("/nowhere")->empty());
}

INSTANTIATE_TEST_SUITE_P(Resolvers, RootFsTest,
                         ::testing::Values(RootFs::Resolver::kAuto, RootFs::Resolver::kWalk));

// ---------------------------------------------------------------------------------------
// prepare_bundle

void copy(const std::string& from, const std::string& to) {
  fs::create_directories(fs::path(to).parent_path());
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

struct Bundle {
  TempDir t;
  std::string dir = t.file("bundle");
  std::string root = dir + "/rootfs";
  std::string sockdir = t.file("sock");
  Settings s;

  Bundle() {
    fs::create_directories(root + "/etc");
    fs::create_directories(sockdir);
    ::chmod(sockdir.c_str(), 0755);
    s = default_settings();
    s.runtime = "/usr/sbin/runc";
    s.socket = sockdir + "/d.sock";
    s.preload = SHAUDIT_TEST_INTERPOSER;
    s.state_dir = t.file("state");
  }
  // glibc's loader and the host's copy of every library the interposer needs (libc.so.6;
  // in a sanitizer build also libasan and libubsan), at the same paths, but `except`.
  void glibc(const std::string& except = "") {
    copy(kHostLoader, root + kHostLoader);
    auto d = deps_of(SHAUDIT_TEST_INTERPOSER);
    ASSERT_TRUE(d.ok()) << d.message();
    for (const auto& lib : d->needed) {
      if (lib == except) continue;
      for (const char* dir : {"/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/"})
        if (fs::exists(dir + lib)) {
          copy(dir + lib, root + dir + lib);
          break;
        }
    }
  }
  void config(const std::string& text, mode_t mode = 0644) {
    write_file(dir + "/config.json", text, mode);
  }
  std::string config() const { return read_file(dir + "/config.json"); }
  std::string mount(const std::string& dest, const std::string& source) const {
    return R"({"destination":")" + dest + R"(","type":"bind","source":")" + source +
           R"(","options":["rbind","ro","nosuid","nodev"]})";
  }
};

const std::string kConfig =
    R"({"ociVersion":"1.0.2","process":{"env":["PATH=/bin"],"args":["sh"]},"root":{"path":"rootfs"},)"
    R"("linux":{"resources":{"memory":{"limit":1.5e9}}}})";

TEST(PrepareBundle, Glibc) {
  Bundle b;
  b.glibc();
  b.config(kConfig, 0600);
  auto r = prepare_bundle(b.s, b.dir, "c1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kPreloaded);
  EXPECT_EQ(r->note, "");
  const std::string list = b.s.state_dir + "/ld.so.preload";
  EXPECT_EQ(
      b.config(),
      R"({"annotations":{"shaudit.io/interposer":"glibc"},"mounts":[)" +
          b.mount(kInterposerInContainer, SHAUDIT_TEST_INTERPOSER) + "," +
          b.mount("/etc/ld.so.preload", list) + "," + b.mount("/run/shaudit", b.sockdir) +
          R"(],"ociVersion":"1.0.2","process":{"env":["PATH=/bin","SHAUDIT_SOCKET=/run/shaudit/d.sock",)"
          R"("LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so"],"args":["sh"]},"root":{"path":"rootfs"},)"
          R"("linux":{"resources":{"memory":{"limit":1.5e9}}}})");
  EXPECT_EQ(shaudit::testing::file_mode(b.dir + "/config.json"), 0600);
  EXPECT_EQ(read_file(list), "/usr/lib/shaudit/libshaudit_preload.so\n");
  EXPECT_EQ(shaudit::testing::file_mode(list), 0644);
  // No temporary file is left beside config.json.
  EXPECT_EQ(std::distance(fs::directory_iterator(b.dir), fs::directory_iterator()), 2);

  // Again on the edited bundle (a retried create): nothing is added twice.
  const std::string once = b.config();
  r = prepare_bundle(b.s, b.dir, "c1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(b.config(), once);
}

TEST(PrepareBundle, ExistingAnnotationsEnvAndTheirPreloadList) {
  Bundle b;
  b.glibc();
  write_file(b.root + "/etc/ld.so.preload", "/lib/libtheirs.so");
  b.config(R"({"process":{"env":["LD_PRELOAD=/x.so","SHAUDIT_SOCKET=/elsewhere"]},)"
           R"("root":{"path":")" +
           b.root +
           R"("},"mounts":[],)"
           R"("annotations":{"shaudit.io/reason":"forged","a":"b"}})");
  auto r = prepare_bundle(b.s, b.dir, "c2");
  ASSERT_TRUE(r.ok()) << r.message();
  const std::string list = b.s.state_dir + "/c2.ld.so.preload";
  EXPECT_EQ(read_file(list), "/usr/lib/shaudit/libshaudit_preload.so\n/lib/libtheirs.so\n");
  EXPECT_EQ(list, container_preload_file(b.s, "c2"));
  EXPECT_EQ(b.config(),
            R"({"process":{"env":["LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so:/x.so",)"
            R"("SHAUDIT_SOCKET=/elsewhere"]},"root":{"path":")" +
                b.root + R"("},"mounts":[)" +
                b.mount(kInterposerInContainer, SHAUDIT_TEST_INTERPOSER) + "," +
                b.mount("/etc/ld.so.preload", list) + "," + b.mount("/run/shaudit", b.sockdir) +
                R"(],"annotations":{"shaudit.io/interposer":"glibc","a":"b"}})");
}

// prepare_bundle on b: the container starts without the interposer, for the reason `note`
// gives (stderr's line), and config.json says so.
void expect_not_preloaded(Bundle& b, const std::string& id, const std::string& note) {
  auto r = prepare_bundle(b.s, b.dir, id);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kNotPreloaded);
  EXPECT_EQ(r->note, note);
}

TEST(PrepareBundle, StaticImage) {
  Bundle b;
  b.config(kConfig);
  expect_not_preloaded(
      b, "c3",
      "container c3: no dynamic loader in the image (statically linked programs only): the "
      "interposer is not preloaded, it runs unaudited (shaudit.io/interposer: none; "
      "shauditd's socket is mounted)");
  EXPECT_EQ(
      b.config(),
      R"({"annotations":{"shaudit.io/interposer":"none","shaudit.io/reason":"no dynamic )"
      R"j(loader in the image (statically linked programs only)"},"mounts":[)j" +
          b.mount("/run/shaudit", b.sockdir) +
          R"(],"ociVersion":"1.0.2","process":{"env":["PATH=/bin","SHAUDIT_SOCKET=/run/shaudit/d.sock"],)"
          R"("args":["sh"]},"root":{"path":"rootfs"},"linux":{"resources":{"memory":{"limit":1.5e9}}}})");
  EXPECT_FALSE(fs::exists(b.s.state_dir));
}

TEST(PrepareBundle, MuslImage) {
  Bundle b;
  copy(SHAUDIT_TEST_INTERPOSER, b.root + "/lib/ld-musl-x86_64.so.1");  // an x86-64 stand-in
  copy(kHostLoader, b.root + kHostLoader);  // gcompat's glibc-named loader: still musl
  b.config(kConfig);
  auto r = prepare_bundle(b.s, b.dir, "m");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->note,
            "container m: a musl image, and the setting preload_musl is not set: the interposer "
            "is not preloaded, it runs unaudited (shaudit.io/interposer: none; shauditd's "
            "socket is mounted)");
  b.config(kConfig);
  b.s.preload_musl = SHAUDIT_TEST_INTERPOSER;
  r = prepare_bundle(b.s, b.dir, "m");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kPreloaded);
  EXPECT_EQ(
      b.config(),
      R"({"annotations":{"shaudit.io/interposer":"musl"},"mounts":[)" +
          b.mount(kInterposerInContainer, SHAUDIT_TEST_INTERPOSER) + "," +
          b.mount("/run/shaudit", b.sockdir) +
          R"(],"ociVersion":"1.0.2","process":{"env":["PATH=/bin","SHAUDIT_SOCKET=/run/shaudit/d.sock",)"
          R"("LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so"],"args":["sh"]},"root":{"path":"rootfs"},)"
          R"("linux":{"resources":{"memory":{"limit":1.5e9}}}})");
}

TEST(PrepareBundle, ImageForAnotherMachineOrWithAnOldLibc) {
  Bundle b;
  std::string h = read_file(kHostLoader);
  h[18] = static_cast<char>(EM_AARCH64);  // e_machine, little-endian
  h[19] = 0;
  fs::create_directories(b.root + "/lib");
  write_file(b.root + "/lib/ld-linux-aarch64.so.1", h);
  b.config(kConfig);
  expect_not_preloaded(
      b, "a",
      "container a: the image's loader /lib/ld-linux-aarch64.so.1 is for AArch64, the "
      "interposer for x86-64: the interposer is not preloaded, it runs unaudited "
      "(shaudit.io/interposer: none; shauditd's socket is mounted)");

  Bundle old;
  old.glibc("libc.so.6");
  copy(SHAUDIT_TEST_INTERPOSER, old.root + "/usr/lib64/libc.so.6");  // defines no versions
  old.config(kConfig);
  expect_not_preloaded(old, "o",
                       "container o: the image's /usr/lib64/libc.so.6 lacks " +
                           libc_versions_needed().at(0) +
                           ", which the interposer needs (its glibc is older than the one the "
                           "interposer was built with): the interposer is not preloaded, it runs "
                           "unaudited (shaudit.io/interposer: none; shauditd's socket is mounted)");

  Bundle nolibc;
  nolibc.glibc("libc.so.6");
  nolibc.config(kConfig);
  auto r = prepare_bundle(nolibc.s, nolibc.dir, "n");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_NE(r->note.find(": the image has no libc.so.6 (the interposer needs it): "),
            std::string::npos)
      << r->note;
}

TEST(PrepareBundle, OptOutAndOptIn) {
  Bundle b;
  b.glibc();
  const std::string out =
      R"({"root":{"path":"rootfs"},"annotations":{"shaudit.io/audit":"false"}})";
  b.config(out);
  auto r = prepare_bundle(b.s, b.dir, "x");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kUntouched);
  EXPECT_EQ(r->note,
            "container x is annotated shaudit.io/audit: \"false\": it runs unaudited "
            "(config.json untouched)");
  EXPECT_EQ(b.config(), out);

  b.s.mode = Mode::kOptIn;
  b.config(kConfig);
  r = prepare_bundle(b.s, b.dir, "x");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kUntouched);
  EXPECT_EQ(r->note,
            "mode opt-in and container x is not annotated shaudit.io/audit: \"true\": it runs "
            "unaudited (config.json untouched)");
  EXPECT_EQ(b.config(), kConfig);
  b.config(R"({"root":{"path":"rootfs"},"annotations":{"shaudit.io/audit":"True"}})");
  r = prepare_bundle(b.s, b.dir, "x");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->kind, Outcome::Kind::kPreloaded);
}

TEST(PrepareBundle, ErrorsLeaveTheBundleAsItWas) {
  Bundle b;
  b.glibc();
  auto err = [&](const std::string& config) {
    b.config(config);
    auto r = prepare_bundle(b.s, b.dir, "e");
    EXPECT_EQ(b.config(), config);
    return r.ok() ? std::string("ok") : r.message();
  };
  const std::string cj = b.dir + "/config.json: ";
  EXPECT_EQ(err("{\"root\": "), cj + "JSON error at byte 9: unexpected end of input");
  EXPECT_EQ(err("[]"), cj + "not a JSON object");
  EXPECT_EQ(err(R"({"Root":{"path":"rootfs"}})"), cj + "\"root\" is spelled \"Root\"");
  EXPECT_EQ(err(R"({"root":{"path":"rootfs"},"mounts":{}})"), cj + "\"mounts\" is not an array");
  EXPECT_EQ(err(R"({"process":{}})"), cj + "no \"root\"");
  EXPECT_EQ(err(R"({"root":{"path":"nowhere"}})"),
            "cannot open the root filesystem " + b.dir + "/nowhere: No such file or directory");
  EXPECT_EQ(err(R"({"root":{"path":"rootfs"},"process":{"env":[1]}})"),
            cj + "an item of \"env\" is not a string");
  EXPECT_EQ(err(R"({"root":{"path":"rootfs"},"annotations":{"shaudit.io/audit":true}})"),
            cj + "annotation shaudit.io/audit is not a string");

  // A mount point runc could not make.
  fs::create_directories(b.root + "/etc/ld.so.preload");
  EXPECT_EQ(err(kConfig), "/etc/ld.so.preload in the image is not a regular file");
  fs::remove(b.root + "/etc/ld.so.preload");
  fs::create_directories(b.root + "/usr/lib/shaudit/libshaudit_preload.so");
  EXPECT_EQ(err(kConfig),
            "/usr/lib/shaudit/libshaudit_preload.so in the image is not a regular file, so a "
            "file cannot be mounted on it");
  fs::remove(b.root + "/usr/lib/shaudit/libshaudit_preload.so");
  EXPECT_EQ(err(R"({"root":{"path":"rootfs"},"mounts":[{"destination":"/run","type":"bind",)"
                R"("source":"/x","options":["rbind","ro"]}]})"),
            "/run/shaudit would have to be made in the read-only mount at /run");
  write_file(b.root + "/run", "");
  EXPECT_EQ(err(kConfig),
            "/run in the image is not a directory, so /run/shaudit cannot be mounted");
  fs::remove(b.root + "/run");

  // The settings' files.
  b.s.preload = b.t.file("missing.so");
  EXPECT_EQ(err(kConfig), "interposer " + b.t.file("missing.so") + ": No such file or directory");
  b.s.preload = SHAUDIT_TEST_INTERPOSER;
  b.s.socket = "/run/d.sock";
  EXPECT_EQ(err(kConfig),
            "the socket's directory /run is mounted into every container, so it must be a "
            "directory of shauditd's own (like /run/shaudit), not /run");
  b.s.socket = b.sockdir + "/d.sock";
  ::chmod(b.sockdir.c_str(), 01777);
  EXPECT_EQ(err(kConfig), "the socket's directory " + b.sockdir + " is writable by everyone");
  ::chmod(b.sockdir.c_str(), 0755);
  b.s.state_dir = "/proc/version/x";
  EXPECT_EQ(err(kConfig), "cannot create /proc/version/x: Not a directory");
}

TEST(PrepareBundle, MissingSocketDirectoryIsCreated) {
  Bundle b;
  b.glibc();
  b.s.socket = b.t.file("run/shaudit/d.sock");
  b.config(kConfig);
  auto r = prepare_bundle(b.s, b.dir, "s");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(fs::is_directory(b.t.file("run/shaudit")));
  EXPECT_EQ(shaudit::testing::file_mode(b.t.file("run/shaudit")), 0755);
}

// ---------------------------------------------------------------------------------------
// prepare_exec: `runc exec --process FILE` as containerd's shim runs it

// A bundle prepared by prepare_bundle, runc's state for it under runc_root, and a process
// file as containerd's shim writes it (0600, from containerd's copy of the spec).
struct ExecSetup : Bundle {
  std::string runc_root = t.file("runc/k8s.io");
  std::string process = t.file("runc-process42");
  std::string id = "c1";

  void state(const std::string& bundle) {
    fs::create_directories(runc_root + "/" + id);
    write_file(runc_root + "/" + id + "/state.json",
               R"({"id":")" + id +
                   R"(","init_process_pid":1,"config":{"rootfs":"/r","labels":[)"
                   R"("io.kubernetes.cri.sandbox-name=p","bundle=)" +
                   bundle + R"("]}})");
  }
  void prepare(const std::string& config = kConfig) {
    b_config(config);
    auto r = prepare_bundle(s, dir, id);
    ASSERT_TRUE(r.ok()) << r.message();
    state(dir);
  }
  void b_config(const std::string& text) { config(text); }
  Result<bool> exec(const std::string& file_text) {
    write_file(process, file_text, 0600);
    return prepare_exec(runc_root, id, process);
  }
  std::string file() const { return read_file(process); }
};

const std::string kShimProcess =
    R"({"user":{"uid":0,"gid":0},"args":["/bin/bash"],"env":["PATH=/bin","TERM=xterm"],"cwd":"/"})";

TEST(PrepareExec, TheProcessGetsWhatTheContainersProcessGot) {
  ExecSetup e;
  e.glibc();
  e.prepare();
  auto r = e.exec(kShimProcess);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(*r);
  EXPECT_EQ(
      e.file(),
      R"({"user":{"uid":0,"gid":0},"args":["/bin/bash"],"env":["PATH=/bin","TERM=xterm",)"
      R"("SHAUDIT_SOCKET=/run/shaudit/d.sock","LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so"],)"
      R"("cwd":"/"})");
  EXPECT_EQ(shaudit::testing::file_mode(e.process), 0600);
  // Done already (runc exec without a file, a retried exec): nothing changes.
  const std::string once = e.file();
  write_file(e.process, once, 0600);
  r = prepare_exec(e.runc_root, e.id, e.process);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(*r);
  EXPECT_EQ(e.file(), once);
  // No temporary file is left beside the process file.
  EXPECT_EQ(std::distance(fs::directory_iterator(e.t.file("")), fs::directory_iterator()), 5);

  // `ctr run --rootfs` gives a process without "env"; the process's own LD_PRELOAD and
  // SHAUDIT_SOCKET are kept, after the interposer and instead of the container's.
  r = e.exec(R"({"args":["sh"],"cwd":"/"})");
  ASSERT_TRUE(r.ok() && *r) << r.message();
  EXPECT_EQ(
      e.file(),
      R"({"env":["SHAUDIT_SOCKET=/run/shaudit/d.sock","LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so"],)"
      R"("args":["sh"],"cwd":"/"})");
  r = e.exec(R"({"env":["LD_PRELOAD=/x.so","SHAUDIT_SOCKET=/mine"],"args":["sh"]})");
  ASSERT_TRUE(r.ok() && *r) << r.message();
  EXPECT_EQ(
      e.file(),
      R"({"env":["LD_PRELOAD=/usr/lib/shaudit/libshaudit_preload.so:/x.so","SHAUDIT_SOCKET=/mine"],)"
      R"("args":["sh"]})");
}

TEST(PrepareExec, StaticImageGetsTheSocketOnly) {
  ExecSetup e;
  e.prepare();
  auto r = e.exec(kShimProcess);
  ASSERT_TRUE(r.ok() && *r) << r.message();
  EXPECT_EQ(e.file(),
            R"({"user":{"uid":0,"gid":0},"args":["/bin/bash"],"env":["PATH=/bin","TERM=xterm",)"
            R"("SHAUDIT_SOCKET=/run/shaudit/d.sock"],"cwd":"/"})");
}

TEST(PrepareExec, ContainersItDidNotPrepareAreLeftAlone) {
  ExecSetup e;
  e.glibc();
  // Opted out: config.json untouched, no annotation.
  e.b_config(R"({"root":{"path":"rootfs"},"annotations":{"shaudit.io/audit":"false"}})");
  ASSERT_TRUE(prepare_bundle(e.s, e.dir, e.id).ok());
  e.state(e.dir);
  auto r = e.exec(kShimProcess);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(*r);
  EXPECT_EQ(e.file(), kShimProcess);
  // An annotation that is not the wrapper's word.
  e.b_config(
      R"({"annotations":{"shaudit.io/interposer":"maybe"},"process":{"env":["SHAUDIT_SOCKET=/x"]}})");
  r = e.exec(kShimProcess);
  ASSERT_TRUE(r.ok() && !*r) << r.message();
  // No runc state for the id, a state without a bundle, an id runc refuses: nothing to say.
  e.prepare();
  r = prepare_exec(e.runc_root, "other", e.process);
  ASSERT_TRUE(r.ok() && !*r) << r.message();
  r = prepare_exec(e.runc_root, "../k8s.io/c1", e.process);
  ASSERT_TRUE(r.ok() && !*r) << r.message();
  e.state("relative/bundle");
  r = e.exec(kShimProcess);
  ASSERT_TRUE(r.ok() && !*r) << r.message();
  EXPECT_EQ(e.file(), kShimProcess);
}

TEST(PrepareExec, AProcessFileItCannotEditIsLeftAsItWas) {
  ExecSetup e;
  e.glibc();
  e.prepare();
  auto err = [&](const std::string& text) {
    auto r = e.exec(text);
    EXPECT_EQ(e.file(), text);
    return r.ok() ? std::string("ok") : r.message();
  };
  EXPECT_EQ(err(R"({"env":)"), e.process + ": JSON error at byte 7: unexpected end of input");
  EXPECT_EQ(err(R"({"env":[1]})"), e.process + ": an item of \"env\" is not a string");
  EXPECT_EQ(err(R"({"Env":[]})"), e.process + ": \"env\" is spelled \"Env\"");
  fs::remove(e.process);
  auto r = prepare_exec(e.runc_root, e.id, e.process);
  EXPECT_EQ(r.message(), "cannot stat " + e.process + ": No such file or directory");
}

TEST(Files, CleanPath) {
  EXPECT_EQ(clean_path("/a//b/./c/../d/"), "/a/b/d");
  EXPECT_EQ(clean_path("../x"), "/x");
  EXPECT_EQ(clean_path(""), "/");
  EXPECT_TRUE(is_proper_ancestor("/", "/a"));
  EXPECT_TRUE(is_proper_ancestor("/run", "/run/shaudit"));
  EXPECT_FALSE(is_proper_ancestor("/run", "/run"));
  EXPECT_FALSE(is_proper_ancestor("/ru", "/run/shaudit"));
  EXPECT_EQ(dir_name("/a/b"), "/a");
  EXPECT_EQ(dir_name("/b"), "/");
  EXPECT_EQ(base_name("/a/b"), "b");
}

}  // namespace
}  // namespace shaudit::oci
