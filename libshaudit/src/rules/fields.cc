// SPDX-License-Identifier: Apache-2.0
// The field table of the rules: each field's name, its id and whether it is numeric.
#include "rules/internal.h"

namespace shaudit::rules::detail {

namespace {

constexpr FieldInfo kFields[] = {
    {"cmd.text", Field::kCmdText, false},
    {"cmd.shell", Field::kCmdShell, false},
    {"proc.argv", Field::kProcArgv, false},
    {"proc.cmdline", Field::kProcCmdline, false},
    {"proc.exe", Field::kProcExe, false},
    {"proc.pid", Field::kProcPid, true},
    {"user.name", Field::kUserName, false},
    {"user.uid", Field::kUserUid, true},
    {"session.id", Field::kSessionId, false},
    {"session.service", Field::kSessionService, false},
    {"session.remote_host", Field::kSessionRemoteHost, false},
    {"session.tty", Field::kSessionTty, false},
    {"host.name", Field::kHostName, false},
    {"container.id", Field::kContainerId, false},
    {"container.name", Field::kContainerName, false},
    {"container.image", Field::kContainerImage, false},
    {"container.image.repository", Field::kContainerImageRepository, false},
    {"k8s.ns.name", Field::kK8sNs, false},
    {"k8s.pod.name", Field::kK8sPod, false},
    {"bypass.kind", Field::kBypassKind, false},
    {"evt.type", Field::kEvtType, false},
    // What the record is about, as text: a command's line, else the argv (an exec, a bypass).
    {"evt.text", Field::kEvtText, false},
    // The command as the shell will see it (shell::normalise): its words joined by spaces
    // (`in` is true when any one word is in the list), the normalised line, and the first
    // command name built from quoted or expanded pieces.
    {"cmd.words", Field::kCmdWords, false},
    {"cmd.line", Field::kCmdLine, false},
    {"cmd.obfuscated", Field::kCmdObfuscated, false},
};

}  // namespace

bool reads_text(Field f) {
  return f == Field::kCmdText || f == Field::kEvtText || f == Field::kCmdWords ||
         f == Field::kCmdLine || f == Field::kCmdObfuscated;
}

const FieldInfo* find_field(std::string_view name) {
  for (const auto& f : kFields)
    if (f.name == name) return &f;
  return nullptr;
}

}  // namespace shaudit::rules::detail
