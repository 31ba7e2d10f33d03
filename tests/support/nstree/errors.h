// What the tree harness throws (the kernel refused, the harness failed, an agent is gone) and the fds it hands out.
#pragma once

#include <unistd.h>

#include <stdexcept>
#include <string>

namespace pidns::testing {

// The kernel refused something (an agent's clone3/unshare/setns..., or a test-side syscall).
class KernelError : public std::runtime_error {
 public:
  KernelError(const std::string& what, int err) : std::runtime_error(what), err_(err) {}
  int err() const noexcept { return err_; }

 private:
  int err_;
};

// The harness itself failed: timeout, protocol error, unknown pid.
class HarnessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A command was sent to an agent (or agent thread) that has exited or was killed.
class AgentGone : public HarnessError {
 public:
  using HarnessError::HarnessError;
};

// Owning file descriptor (closed on destruction).
class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace pidns::testing
