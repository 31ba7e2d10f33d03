// Test support: a process whose main thread called pthread_exit() while its other threads live on
// (the leader is a zombie, /proc/TGID/ns/* fail, /proc/TGID/task/TID/ns/* work), optionally pid 1
// of fresh namespaces. Header-only, talks to the kernel only (nothing from lib/).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pidns::testing {

// fork()s a parent P that clone3()s the process Z into new namespaces `ns_flags` (CLONE_NEWPID: Z
// is pid 1 of a fresh pid namespace; CLONE_NEWNET, CLONE_NEWUTS...: namespaces only Z holds). Z starts `threads` threads and then its main thread exits alone, as pthread_exit()
// does (the SYS_exit syscall). The
// constructor returns once Z's leader is a zombie and every thread runs. A thread exits (raw
// SYS_exit, so the last one ends the process without running atexit handlers) when end_thread()
// says so. P reaps Z only when reap() is called (or at destruction): until then a Z whose threads
// all exited stays a zombie in /proc with no live thread. If the test process dies, the pipes'
// EOF ends every thread and P.
class ZombieLeader {
 public:
  explicit ZombieLeader(int ns_flags = CLONE_NEWPID, int threads = 2,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : timeout_(timeout) {
    if (threads < 1) throw std::invalid_argument("a zombie leader needs at least one live thread");
    int report[2];
    int reap[2];
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(reap, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    std::vector<int> ctl_read, ctl_write;
    for (int i = 0; i < threads; ++i) {
      int c[2];
      if (::pipe2(c, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
      ctl_read.push_back(c[0]);
      ctl_write.push_back(c[1]);
    }
    parent_ = ::fork();
    if (parent_ < 0) throw std::runtime_error("fork");
    if (parent_ == 0) {
      // P: only what it and Z need (not the test's other fds, a bus connection for one).
      std::vector<int> keep{report[1], reap[0]};
      keep.insert(keep.end(), ctl_read.begin(), ctl_read.end());
      close_others(keep);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // clone3 without a stack is fork-like; the new namespaces are Z's alone (P never enters
      // them: a read of P racing an unshare()/setns() would see them).
      clone_args args{};
      args.flags = static_cast<std::uint64_t>(static_cast<std::uint32_t>(ns_flags));
      args.exit_signal = SIGCHLD;
      const pid_t z = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
      if (z < 0) ::_exit(3);
      if (z == 0) run_zombie_leader(report[1], ctl_read);
      const std::int32_t msg[2] = {-1, z};  // Z's pid in P's own (= the test's) pid namespace
      if (::write(report[1], msg, sizeof msg) != sizeof msg) ::_exit(4);
      ::close(report[1]);
      for (int fd : ctl_read) ::close(fd);
      char c;
      while (::read(reap[0], &c, 1) < 0 && errno == EINTR) {
      }
      int status = 0;
      while (::waitpid(z, &status, 0) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(report[1]);
    ::close(reap[0]);
    reap_fd_ = reap[1];
    for (int fd : ctl_read) ::close(fd);
    // In any order: P's message (-1, Z's host pid) and one per thread (index, tid in Z's pid
    // namespace).
    std::vector<std::pair<std::int32_t, std::int32_t>> local;
    for (int i = 0; i <= threads; ++i) {
      std::int32_t msg[2];
      read_exact(report[0], msg, sizeof msg);
      if (msg[0] < 0)
        tgid_ = msg[1];
      else
        local.emplace_back(msg[0], msg[1]);
    }
    if (tgid_ <= 0 || local.size() != static_cast<std::size_t>(threads)) throw std::runtime_error("zombie leader: bad report");
    ::close(report[0]);
    // The leader's exit: wait for state Z.
    wait_for([&] { return state_of("/proc/" + std::to_string(tgid_) + "/stat") == 'Z'; }, "the leader to be a zombie");
    // Host tids: the last NSpid element of each task is the tid in Z's namespace.
    for (const auto& [index, local_tid] : local) {
      pid_t found = 0;
      for (pid_t tid : task_ids(tgid_)) {
        const auto chain = nspid_of(task_path(tgid_, tid, "status"));
        if (!chain.empty() && chain.back() == local_tid && tid != tgid_) found = tid;
      }
      if (found == 0) throw std::runtime_error("thread with local tid " + std::to_string(local_tid) + " not found");
      threads_.push_back(Thread{found, ctl_write[static_cast<std::size_t>(index)]});
    }
  }

  ~ZombieLeader() {
    for (auto& t : threads_)
      if (t.ctl >= 0) ::close(t.ctl);
    if (reap_fd_ >= 0) ::close(reap_fd_);
    if (parent_ > 0) {
      // EOF ends every thread and P; SIGKILL in case something hangs.
      const auto deadline = std::chrono::steady_clock::now() + timeout_;
      int status = 0;
      while (::waitpid(parent_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(tgid_, SIGKILL);
          ::kill(parent_, SIGKILL);
          ::waitpid(parent_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  }
  ZombieLeader(const ZombieLeader&) = delete;
  ZombieLeader& operator=(const ZombieLeader&) = delete;

  // Z's host pid (its thread group id; the zombie leader's tid).
  pid_t tgid() const noexcept { return tgid_; }
  // Host tids of the threads that have not been ended, in start order.
  std::vector<pid_t> tids() const {
    std::vector<pid_t> out;
    for (const auto& t : threads_)
      if (t.ctl >= 0) out.push_back(t.tid);
    return out;
  }
  // The thread exits; returns once /proc no longer shows it (the last one: once Z has no live
  // thread; Z itself stays a zombie until reap()).
  void end_thread(pid_t tid) {
    auto it = std::find_if(threads_.begin(), threads_.end(), [&](const Thread& t) { return t.tid == tid && t.ctl >= 0; });
    if (it == threads_.end()) throw std::invalid_argument("no live thread " + std::to_string(tid));
    ::close(it->ctl);
    it->ctl = -1;
    const std::string task = "/proc/" + std::to_string(tgid_) + "/task/" + std::to_string(tid) + "/stat";
    wait_for([&] { return ::access(task.c_str(), F_OK) != 0; }, "thread " + std::to_string(tid) + " to exit");
  }
  // P reaps Z (after its last thread ended); returns once /proc/TGID is gone.
  void reap() {
    if (reap_fd_ >= 0) ::close(reap_fd_);
    reap_fd_ = -1;
    const std::string dir = "/proc/" + std::to_string(tgid_) + "/stat";
    wait_for([&] { return ::access(dir.c_str(), F_OK) != 0; }, "process " + std::to_string(tgid_) + " to be reaped");
  }
  // Host pid of P, Z's parent.
  pid_t parent() const noexcept { return parent_; }

  // Tids listed in /proc/PID/task (the zombie leader included), ascending.
  static std::vector<pid_t> task_ids(pid_t pid) {
    std::vector<pid_t> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    if (auto* d = ::opendir(dir.c_str())) {
      while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') out.push_back(static_cast<pid_t>(std::stol(e->d_name)));
      ::closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // The state letter of a stat file ('?' if unreadable).
  static char state_of(const std::string& stat_path) {
    std::ifstream in(stat_path);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = s.rfind(')');
    return close == std::string::npos || close + 2 >= s.size() ? '?' : s[close + 2];
  }
  // The NSpid line of a status file.
  static std::vector<pid_t> nspid_of(const std::string& status_path) {
    std::ifstream in(status_path);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("NSpid:", 0) != 0) continue;
      std::istringstream ss(line.substr(6));
      std::vector<pid_t> out;
      for (long v; ss >> v;) out.push_back(static_cast<pid_t>(v));
      return out;
    }
    return {};
  }
  // /proc/TGID/task/TID/REST: a thread's view, which works while its leader is a zombie.
  static std::string task_path(pid_t tgid, pid_t tid, const std::string& rest) {
    return "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid) + "/" + rest;
  }
  // The inode of a thread's namespace link (/proc/TGID/task/TID/ns/TYPE).
  static std::uint64_t thread_ns_inode(pid_t tgid, pid_t tid, const char* type) {
    struct stat st {};
    const std::string path = task_path(tgid, tid, std::string("ns/") + type);
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path + ": " + std::strerror(errno));
    return st.st_ino;
  }

 private:
  struct Thread {
    pid_t tid;
    int ctl;  // write end: closing it ends the thread
  };
  struct Start {
    int ctl;
    int report;
    std::int32_t index;
  };

  [[noreturn]] static void run_zombie_leader(int report, const std::vector<int>& ctl_read) {
    // Z: every thread waits on its own pipe; EOF (end_thread, or the test's death) ends it.
    static std::vector<Start> starts;  // this process's own copy: fork()ed
    starts.clear();
    for (std::size_t i = 0; i < ctl_read.size(); ++i) starts.push_back(Start{ctl_read[i], report, static_cast<std::int32_t>(i)});
    for (auto& s : starts) {
      pthread_t th;
      if (::pthread_create(&th, nullptr, &thread_main, &s) != 0) ::_exit(5);
    }
    // The leader exits, the process lives on in its threads. pthread_exit() in main ends in this
    // very syscall (SYS_exit: this thread only, not exit_group); it is made directly because
    // pthread_exit() would first unwind this fork()ed copy of the test's stack, through Catch2.
    ::syscall(SYS_exit, 0);
    __builtin_unreachable();
  }
  static void* thread_main(void* arg) {
    const auto* s = static_cast<const Start*>(arg);
    const std::int32_t msg[2] = {s->index, static_cast<std::int32_t>(::syscall(SYS_gettid))};
    if (::write(s->report, msg, sizeof msg) != sizeof msg) ::syscall(SYS_exit, 6);
    char c;
    while (::read(s->ctl, &c, 1) < 0 && errno == EINTR) {
    }
    ::syscall(SYS_exit, 0);  // this thread only; the last one ends the process (no atexit handlers)
    return nullptr;
  }
  static void close_others(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
      if (static_cast<unsigned>(fd) > from) ::syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0u);
      from = std::max(from, static_cast<unsigned>(fd) + 1);
    }
    ::syscall(SYS_close_range, from, ~0u, 0u);
  }
  void read_exact(int fd, void* buf, std::size_t n) {
    auto* p = static_cast<char*>(buf);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (n > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) == 0)
        throw std::runtime_error("zombie leader: timed out reading its report");
      const ssize_t r = ::read(fd, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw std::runtime_error("zombie leader: its report ended early");
      p += r;
      n -= static_cast<std::size_t>(r);
    }
  }
  template <class F>
  void wait_for(F&& done, const std::string& what) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("zombie leader: timed out waiting for " + what);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::chrono::milliseconds timeout_;
  pid_t parent_ = -1;
  pid_t tgid_ = 0;
  int reap_fd_ = -1;
  std::vector<Thread> threads_;
};

}  // namespace pidns::testing
