// SPDX-License-Identifier: Apache-2.0
// Secret redaction, applied to typed lines and argv before a record is signed or leaves the
// daemon. Each finding replaces the secret with "***" and is reported by kind and position,
// never by content.
//
// A line is read as the shell reads it: words, their quoting ('...', "...", $'...', \x),
// simple commands (; | & && || ( ) ` and newlines), redirections, and the command word of
// each command after assignments, keywords (command, exec, time, if, do, ...) and wrappers
// (sudo, doas, env, nice, timeout, xargs, watch, ...). Options are matched on the unquoted
// word, so -p'S', "-pS" and --password="S" are the same option; the mask replaces the value's
// quotes with it when the value fills them (-p'S' -> -p***), and stays inside them when the
// quotes also hold the option or a prefix ('pass:S' -> 'pass:***'). A quoted word with blanks
// is also read as a command line of its own (sh -c '...', ssh host "...", psql "...").
// A value that begins with an expansion ($NAME, ${...}, $(...); not '$...' in single quotes)
// is not on the line and is kept; in an argv a '$' is just a byte.
//
// Kinds:
//   mysql_password   -pSECRET / --password=SECRET of mysql, mariadb and their tools only
//                    (`mkdir -p dir` is not a secret; `mysql -p db` prompts), and
//                    `mysqladmin password NEW`
//   password_option  --password=SECRET of any program; --password SECRET only of programs
//                    that take it so (docker/podman/buildah/skopeo, helm, wget, mongo*, az,
//                    oc, kubectl, zip, influx, svn, twine, argocd; redis-cli --pass): for
//                    mysql and psql the next word is a database
//   secret_option    a program's own secret option, --opt=S or --opt S: --token,
//                    --api-key, --access-token, --oauth2-bearer and --*-password,
//                    --*-token, --*-secret, --*-api-key (not --no-*, --ask-*, --with-*,
//                    --use-*, --prompt-*, --skip-*: flags); sshpass -p, redis-cli -a,
//                    docker/podman/helm/skopeo login -p, az/oc -p, mongosh -p, ldap* -w,
//                    ldappasswd -s/-a, zip/unzip -P, 7z -p, ipmitool/sqlcmd/mosquitto -P,
//                    openssl -pass/-passin/-passout pass:S (not env:, file:), -k, -K,
//                    keytool/jarsigner -storepass/-keypass, htpasswd -b's password operand,
//                    aws configure set <secret name> S, kubectl create secret's
//                    --from-literal=key=S
//   basic_auth       the password of user:S (curl -u/--user/-U/--proxy-user, httpie -a,
//                    skopeo --creds) and user%S (smbclient -U)
//   url_credentials  scheme://user:SECRET@host (postgresql://, https://, redis://, ...)
//   secret_variable  assignments NAME=SECRET anywhere (export, env, declare, local,
//                    readonly, docker -e, key=value operands, --env=NAME=S and other
//                    options' values but --*file*'s; helm --set a.rootPassword=S)
//                    where NAME, upper-cased, is PASS, TOKEN, SECRET, APIKEY, SSHPASS,
//                    REDISCLI_AUTH, ends in PASSWORD, PASSWD, _PASS, _PWD, _TOKEN, _SECRET,
//                    _KEY, APIKEY, _AUTH, _CREDENTIAL, or starts with SECRET_ / holds
//                    _SECRET_. Not secrets: names ending in _FILE, _PATH, _DIR, _NAME, _ID,
//                    _TTL, _URL, ... (KEY_FILE, SSH_KEY_PATH, PASSWORD_FILE say where a
//                    secret is, not what), PWD and OLDPWD (the working directory), and a
//                    *_KEY (not *API_KEY / *SECRET_KEY) whose value is a path (/, ~, ./,
//                    ../): SSH_KEY=~/.ssh/id_rsa names a key file
//   secret_header    NAME: SECRET where NAME is Cookie, or ends in Api-Key, ApiKey,
//                    -Secret-Key, -Auth-Key, -App-Key, -Master-Key, Subscription-Key,
//                    Functions-Key, -Token, -Secret, -Password (X-Api-Key, Private-Token,
//                    X-Auth-Token, X-Vault-Token; not Public-Key:), as a word or after
//                    --header=
//   aws_access_key   AKIA... / ASIA... access key ids
//   authorization    Authorization: <scheme> SECRET (and Proxy-Authorization:)
//   custom           a user pattern from the configuration (RE2 syntax, linear time; the
//                    whole match, or its first capture group when it has one, is redacted)
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shaudit/result.h"

namespace re2 {
class RE2;
}

namespace shaudit {

struct Redaction {
  std::string kind;
  size_t offset;  // byte offset of the secret in the original string
};

// Whether a shell reads another physical line for the command these lines began: the last
// ends with an unescaped backslash, or a quote ('...', "...", $'...') is still open. (For
// lines rebuilt from the kernel, which no shell marks as continuations.)
bool line_continues(std::string_view lines);

class Redactor {
 public:
  // user_patterns: extra RE2 patterns (config key redact_patterns). A pattern RE2 refuses is
  // an error naming it: "redact pattern '<pattern>': <RE2's reason>".
  static Result<Redactor> make(const std::vector<std::string>& user_patterns);
  Redactor() = default;

  // Redacts a shell line in place; returns what was found. `before`: for a continuation line
  // (the second and later physical lines of one command), the command's earlier lines as
  // typed, joined by '\n': they say what the command is and whether a quote is open. Only
  // this line's bytes are changed; offsets are within it.
  std::vector<Redaction> line(std::string& text, std::string_view before = {}) const;
  // Redacts an argv in place (argv[0] and wrappers decide which program's rules apply);
  // offsets are per element, in `element`.
  struct ArgRedaction {
    std::string kind;
    size_t element;
    size_t offset;
  };
  std::vector<ArgRedaction> argv(std::vector<std::string>& args) const;

 private:
  std::vector<std::shared_ptr<const re2::RE2>> user_;
};

}  // namespace shaudit
