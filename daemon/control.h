// SPDX-License-Identifier: Apache-2.0
// The root-only control socket (`shaudit stats`), served by its own thread so it answers
// even while the receiver waits on a full queue (for example when the disk is full).
#pragma once

#include <functional>
#include <string>

#include "shaudit/result.h"

namespace shaudit::daemon {

class ControlServer {
 public:
  ControlServer(std::string path, std::function<std::string()> stats_json);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  Result<void> listen();
  void run();  // until stop()
  void stop();
  void remove_socket();

 private:
  void serve_one();

  std::string path_;
  std::function<std::string()> stats_json_;
  int fd_ = -1, wake_fd_ = -1, reserve_fd_ = -1;
  bool bound_ = false;
};

}  // namespace shaudit::daemon
