// SPDX-License-Identifier: Apache-2.0
// The systemd readiness protocol (sd_notify(3)) without libsystemd: one datagram to the
// socket named by $NOTIFY_SOCKET. Without that variable (not started by systemd) nothing
// is sent and the call succeeds.
#pragma once

#include <string_view>

namespace shaudit::daemon {

// Sends `state` ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to the service
// manager. Returns 0, or -errno when $NOTIFY_SOCKET is set but the message could not be
// sent (the caller reports it; the daemon keeps running).
int sd_notify_state(std::string_view state);

}  // namespace shaudit::daemon
