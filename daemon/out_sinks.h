// SPDX-License-Identifier: Apache-2.0
// Sinks for the output types that need a transport of their own (see outputs.h).
#pragma once

#include <memory>
#include <string>

#include "outputs.h"

namespace shaudit::daemon {

// slack, loki, webhook, falcosidekick, otlp: HTTP POST through libcurl.
Result<std::unique_ptr<Sink>> make_http_sink(const OutputConfig& cfg, const SinkContext& ctx);
// syslog: RFC 5424 over TCP (octet counting), UDP, or TLS.
Result<std::unique_ptr<Sink>> make_syslog_sink(const OutputConfig& cfg, const SinkContext& ctx);
// auditd: AUDIT_USER_CMD messages through libaudit.
Result<std::unique_ptr<Sink>> make_auditd_sink(const OutputConfig& cfg, const SinkContext& ctx);

// Whether s is an IPv4 or IPv6 address (not a name).
bool is_ip_literal(const std::string& s);

}  // namespace shaudit::daemon
