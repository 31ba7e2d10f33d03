// Self-test of tests/support/nstree: the process/namespace trees it builds and its oracles agree with the kernel.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

#include "../support/nstree.h"

namespace t = pidns::testing;

namespace {

std::string ns_path(pid_t pid, const char* type) {
  return "/proc/" + std::to_string(pid) + "/ns/" + type;
}

ino_t parent_ino(pid_t pid, const char* type) {
  t::UniqueFd fd = t::open_ns(pid, type);
  auto p = t::oracle_parent_inode(fd.get());
  REQUIRE(p.has_value());
  return *p;
}

bool pid_exists(pid_t pid) {
  return kill(pid, 0) == 0 || errno != ESRCH;
}

bool tid_exists(pid_t tid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(tid)).c_str(), &st) == 0;
}

bool no_zombie_children() {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL);
  return (r == -1 && errno == ECHILD) || (r == 0 && si.si_pid == 0);
}

bool mounted_under(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(dir) != std::string::npos) return true;
  return false;
}

// Scans every task of the system for a namespace inode (to show "no process holds it").
bool some_task_in(ino_t inode, const char* type) {
  std::set<pid_t> tasks;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') tasks.insert(std::atoi(e->d_name));
    closedir(d);
  }
  for (pid_t pid : tasks) {
    std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      struct stat st;
      std::string p = dir + "/" + e->d_name + "/ns/" + type;
      if (stat(p.c_str(), &st) == 0 && st.st_ino == inode) {
        closedir(d);
        return true;
      }
    }
    closedir(d);
  }
  return false;
}

}  // namespace

TEST_CASE("seed000 tree: NSpid chains have the expected shape", "[nstree]") {
  t::ProcTree tree;
  auto s = t::make_seed000_tree(tree);
  auto c1 = t::oracle_nspid(s.t1), c2 = t::oracle_nspid(s.t2), c3 = t::oracle_nspid(s.t3),
       c4 = t::oracle_nspid(s.t4), c5 = t::oracle_nspid(s.t5);
  const std::size_t base = t::oracle_nspid(getpid()).size();  // 1 when the test runs in init_pid_ns
  CHECK(c1.size() == base + 0);
  CHECK(c2.size() == base + 1);
  CHECK(c3.size() == base + 1);
  CHECK(c4.size() == base + 2);
  CHECK(c5.size() == base + 2);
  CHECK(c2.back() == 1);
  CHECK(c4.back() == 1);
  CHECK(c3.back() != 1);
  CHECK(c5.back() != 1);
  // First element is the host pid.
  CHECK(c1.front() == s.t1);
  CHECK(c5.front() == s.t5);
  // ns1 = t2's = t3's; ns2 = t4's = t5's; ns2's parent is ns1; ns1's parent is ours.
  CHECK(t::oracle_ns_inode(s.t2, "pid") == t::oracle_ns_inode(s.t3, "pid"));
  CHECK(t::oracle_ns_inode(s.t4, "pid") == t::oracle_ns_inode(s.t5, "pid"));
  CHECK(parent_ino(s.t4, "pid") == t::oracle_ns_inode(s.t2, "pid"));
  CHECK(parent_ino(s.t2, "pid") == t::oracle_ns_inode(getpid(), "pid"));
  CHECK(t::pid_in_ns_of(s.t4) == 1);
  CHECK(tree.parent_of(s.t4) == s.t3);
}

TEST_CASE("seed000 tree: three independent translations agree", "[nstree]") {
  t::ProcTree tree;
  auto s = t::make_seed000_tree(tree);
  auto c3 = t::oracle_nspid(s.t3), c5 = t::oracle_nspid(s.t5), c4 = t::oracle_nspid(s.t4);
  // SCM_CREDENTIALS translation done by the kernel for an agent of each namespace.
  CHECK(tree.pid_seen_by(s.t2, s.t5) == c5[c5.size() - 2]);
  CHECK(tree.pid_seen_by(s.t4, s.t5) == c5.back());
  CHECK(tree.pid_seen_by(s.t5, s.t4) == 1);
  CHECK(tree.pid_seen_by(s.t4, s.t3) == 0);  // t3 is not in ns2
  CHECK(tree.pid_seen_by(s.t2, s.t1) == 0);  // nor t1 in ns1
  CHECK(tree.pid_seen_by(s.t1, s.t5) == s.t5);
  // The nsfs ioctls.
  t::UniqueFd ns1 = t::open_ns(s.t2, "pid"), ns2 = t::open_ns(s.t4, "pid"), mine = t::open_ns(getpid(), "pid");
  CHECK(t::oracle_ioctl_translate(c5[c5.size() - 2], ns1.get(), ns2.get()) == std::optional<pid_t>(c5.back()));
  CHECK(t::oracle_ioctl_translate(c4.back(), ns2.get(), ns1.get()) == std::optional<pid_t>(c4[c4.size() - 2]));
  CHECK(t::oracle_ioctl_translate(c3.back(), ns1.get(), ns2.get()) == std::optional<pid_t>(0));
  CHECK(t::oracle_ioctl_translate(s.t5, mine.get(), ns1.get()) == std::optional<pid_t>(c5[c5.size() - 2]));
  CHECK_FALSE(t::oracle_ioctl_translate(4000000, ns1.get(), ns2.get()).has_value());
  // NStgid equals NSpid for a process, and NS_GET_ID tells namespaces apart.
  CHECK(t::oracle_nstgid(s.t5) == c5);
  CHECK(t::oracle_ns_id(ns1.get()) != t::oracle_ns_id(ns2.get()));
  t::UniqueFd ns1_again = t::open_ns(s.t3, "pid");
  CHECK(t::oracle_ns_id(ns1.get()) == t::oracle_ns_id(ns1_again.get()));
  CHECK_THROWS_AS(tree.pid_seen_by(s.t1, 4000000), t::KernelError);
}

TEST_CASE("the 5-namespace hierarchy has the parents NS_GET_PARENT reports", "[nstree]") {
  t::ProcTree tree;
  auto h = t::make_ns_hierarchy5(tree);
  const ino_t init_ns = t::oracle_ns_inode(getpid(), "pid");
  ino_t ino[6] = {init_ns, 0, 0, 0, 0, 0};
  for (int i = 1; i <= 5; ++i) {
    ino[i] = t::oracle_ns_inode(h.ns(i).init, "pid");
    CHECK(t::oracle_ns_inode(h.ns(i).extra, "pid") == ino[i]);
    CHECK(t::pid_in_ns_of(h.ns(i).init) == 1);
    CHECK(t::pid_in_ns_of(h.ns(i).extra) != 1);
  }
  CHECK(std::set<ino_t>(ino, ino + 6).size() == 6);
  CHECK(t::oracle_ns_inode(h.root, "pid") == init_ns);
  CHECK(parent_ino(h.ns1.init, "pid") == init_ns);
  CHECK(parent_ino(h.ns2.init, "pid") == init_ns);
  CHECK(parent_ino(h.ns3.init, "pid") == ino[2]);
  CHECK(parent_ino(h.ns4.init, "pid") == ino[3]);
  CHECK(parent_ino(h.ns5.init, "pid") == ino[3]);
  const std::size_t base = t::oracle_nspid(getpid()).size();
  CHECK(t::oracle_nspid(h.ns1.extra).size() == base + 1);
  CHECK(t::oracle_nspid(h.ns3.extra).size() == base + 2);
  CHECK(t::oracle_nspid(h.ns5.extra).size() == base + 3);
  // Siblings do not see each other.
  CHECK(tree.pid_seen_by(h.ns4.init, h.ns5.extra) == 0);
  CHECK(tree.pid_seen_by(h.ns3.extra, h.ns5.extra) == t::oracle_nspid(h.ns5.extra)[base + 1]);
}

TEST_CASE("a 32-deep pid namespace chain works and a 33rd level fails", "[nstree]") {
  t::ProcTree tree;
  const int depth = t::max_extra_pid_ns_levels();
  INFO("levels available below the test process: " << depth);
  REQUIRE(depth >= 1);
  auto chain = t::make_chain(tree, depth);
  REQUIRE(static_cast<int>(chain.size()) == depth);
  const std::size_t base = t::oracle_nspid(getpid()).size();
  for (int i = 0; i < depth; ++i) {
    auto c = t::oracle_nspid(chain[i]);
    REQUIRE(c.size() == base + static_cast<std::size_t>(i) + 1);
    CHECK(c.back() == 1);
  }
  // The deepest init can still make ordinary children...
  pid_t leaf = tree.spawn(chain.back(), 0);
  CHECK(t::oracle_nspid(leaf).size() == base + static_cast<std::size_t>(depth));
  CHECK(t::oracle_nspid(leaf).back() == 2);
  CHECK(tree.pid_seen_by(chain.front(), leaf) == t::oracle_nspid(leaf)[base]);
  // ...but not one more pid namespace.
  auto r = tree.try_spawn(chain.back(), CLONE_NEWPID);
  CHECK_FALSE(r);
  CHECK((r.err == ENOSPC || r.err == EINVAL));
  CHECK(r.err == ENOSPC);  // what Linux 6.18 actually returns
  try {
    tree.spawn(chain.back(), CLONE_NEWPID);
    FAIL("spawn past MAX_PID_NS_LEVEL should throw");
  } catch (const t::KernelError& e) {
    CHECK(e.err() == ENOSPC);
  }
  // Killing the top init takes the whole chain down.
  tree.kill_agent(chain.front());
  for (pid_t p : chain) CHECK_FALSE(tree.alive(p));
  CHECK_FALSE(tree.alive(leaf));
}

TEST_CASE("threads: tids are real and threads can setns alone", "[nstree]") {
  t::ProcTree tree;
  auto s = t::make_seed000_tree(tree);
  pid_t th = tree.spawn_thread(s.t5);
  pid_t th2 = tree.spawn_thread(s.t5);
  CHECK(th != s.t5);
  CHECK(th != th2);
  CHECK(tree.owner_of_thread(th) == s.t5);
  auto tc = t::oracle_nspid(th);
  REQUIRE(tc.size() == t::oracle_nspid(s.t5).size());
  CHECK(tc.front() == th);
  CHECK(t::oracle_nstgid(th) == t::oracle_nspid(s.t5));  // its thread group is t5
  CHECK(tree.pid_seen_by(s.t4, th) == tc.back());
  CHECK(tree.pid_seen_by(s.t1, th) == th);  // t1 is in the test's pid ns
  CHECK(tree.pid_seen_by(s.t2, th) == tc[tc.size() - 2]);

  // A thread alone in other net/uts/ipc namespaces.
  pid_t other = tree.spawn(0, CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP);
  for (const char* type : {"net", "uts", "ipc", "cgroup"}) {
    INFO(type);
    REQUIRE(t::oracle_ns_inode(other, type) != t::oracle_ns_inode(s.t5, type));
    tree.thread_setns(th, ns_path(other, type));
    CHECK(t::oracle_ns_inode(th, type) == t::oracle_ns_inode(other, type));
    CHECK(t::oracle_ns_inode(s.t5, type) != t::oracle_ns_inode(other, type));  // the main thread stayed
    CHECK(t::oracle_ns_inode(th2, type) == t::oracle_ns_inode(s.t5, type));
  }
  // pid: a thread may setns to a descendant pid ns; only its pid_for_children changes.
  {
    pid_t deeper = tree.spawn(s.t5, CLONE_NEWPID);
    tree.thread_setns(th, ns_path(deeper, "pid"));
    CHECK(t::oracle_ns_inode(th, "pid") == t::oracle_ns_inode(s.t5, "pid"));
    CHECK(t::oracle_ns_inode(th, "pid_for_children") == t::oracle_ns_inode(deeper, "pid"));
  }
  // mnt, user and time cannot be entered by one thread of a multi-threaded process.
  pid_t iso = tree.spawn(0, CLONE_NEWNS | CLONE_NEWUSER);
  try {
    tree.thread_setns(th, ns_path(iso, "mnt"));
    FAIL("setns(mnt) from a thread should fail");
  } catch (const t::KernelError& e) {
    CHECK(e.err() == EINVAL);
  }
  try {
    tree.thread_setns(th, ns_path(iso, "user"));
    FAIL("setns(user) from a thread should fail");
  } catch (const t::KernelError& e) {
    CHECK(e.err() == EINVAL);
  }
  {
    pid_t timens_maker = tree.spawn(0, 0);
    tree.unshare_in(timens_maker, CLONE_NEWTIME);  // time_for_children only
    try {
      tree.thread_setns(th, ns_path(timens_maker, "time_for_children"));
      FAIL("setns(time) from a thread should fail");
    } catch (const t::KernelError& e) {
      CHECK(e.err() == EUSERS);
    }
  }

  tree.exit_thread(th2);
  CHECK_FALSE(tid_exists(th2));
  CHECK_THROWS_AS(tree.thread_setns(th2, ns_path(other, "net")), t::AgentGone);
  CHECK(tree.threads_of(s.t5) == std::vector<pid_t>{th});
}

TEST_CASE("user namespaces: agents are root under a full identity map, nested and after unshare_in", "[nstree]") {
  t::ProcTree tree;
  pid_t u = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS);
  {
    std::ifstream in("/proc/" + std::to_string(u) + "/uid_map");
    long a = -1, b = -1, c = -1;
    in >> a >> b >> c;
    CHECK(a == 0);
    CHECK(b == 0);
    CHECK(c == 4294967295L);
  }
  // Nested user namespaces, each a full identity map, and a thread inside.
  pid_t u2 = tree.spawn(u, CLONE_NEWUSER | CLONE_NEWNET);
  pid_t u3 = tree.spawn(u2, CLONE_NEWUSER | CLONE_NEWPID);
  CHECK(parent_ino(u3, "user") == t::oracle_ns_inode(u2, "user"));
  CHECK(parent_ino(u2, "user") == t::oracle_ns_inode(u, "user"));
  pid_t th = tree.spawn_thread(u3);
  CHECK(t::oracle_nspid(th).front() == th);
  // unshare_in: net changes at once, pid only for children.
  pid_t a = tree.spawn(0, 0);
  const ino_t net0 = t::oracle_ns_inode(a, "net"), pid0 = t::oracle_ns_inode(a, "pid");
  tree.unshare_in(a, CLONE_NEWNET | CLONE_NEWPID);
  CHECK(t::oracle_ns_inode(a, "net") != net0);
  CHECK(t::oracle_ns_inode(a, "pid") == pid0);
  // Kernel quirk: pid_for_children cannot be opened (ENOENT) until the new pid ns has its init.
  try {
    t::oracle_ns_inode(a, "pid_for_children");
    FAIL("pid_for_children should not be reachable before the first child");
  } catch (const t::KernelError& e) {
    CHECK(e.err() == ENOENT);
  }
  pid_t child = tree.spawn(a, 0);
  const ino_t pfc = t::oracle_ns_inode(a, "pid_for_children");
  CHECK(pfc != pid0);
  CHECK(t::oracle_ns_inode(child, "pid") == pfc);
  CHECK(t::pid_in_ns_of(child) == 1);
  CHECK(t::oracle_ns_inode(child, "net") == t::oracle_ns_inode(a, "net"));
  // unshare_in(CLONE_NEWUSER) gets mapped too and the agent keeps working.
  pid_t b = tree.spawn(0, 0);
  tree.unshare_in(b, CLONE_NEWUSER);
  CHECK(parent_ino(b, "user") == t::oracle_ns_inode(getpid(), "user"));
  pid_t bc = tree.spawn(b, CLONE_NEWNET);
  CHECK(t::oracle_ns_inode(bc, "user") == t::oracle_ns_inode(b, "user"));
  // ...but not once the agent has threads.
  pid_t c = tree.spawn(0, 0);
  tree.spawn_thread(c);
  try {
    tree.unshare_in(c, CLONE_NEWUSER);
    FAIL("unshare(CLONE_NEWUSER) with threads should fail");
  } catch (const t::KernelError& e) {
    CHECK(e.err() == EINVAL);
  }
  // setns_in moves the whole (single-threaded) agent.
  pid_t d = tree.spawn(0, 0);
  tree.setns_in(d, ns_path(u2, "net"));
  CHECK(t::oracle_ns_inode(d, "net") == t::oracle_ns_inode(u2, "net"));
}

TEST_CASE("holders keep namespaces alive without processes", "[nstree]") {
  t::ProcTree tree;

  SECTION("fd") {
    auto h = t::hold_ns_by_fd(tree);
    CHECK(h.kind == t::HoldKind::Fd);
    CHECK_FALSE(some_task_in(h.inode, "net"));
    t::UniqueFd fd = t::open_held_ns(h);
    CHECK(t::oracle_fd_inode(fd.get()) == h.inode);
    struct stat st;
    REQUIRE(stat(("/proc/" + std::to_string(h.holder_pid) + "/fd/" + std::to_string(h.holder_fd)).c_str(), &st) == 0);
    CHECK(st.st_ino == h.inode);
    // Closing the holder's fd: only our own fd keeps it now; still the same namespace.
    tree.close_fd(h.holder_pid, h.holder_fd);
    CHECK(t::oracle_fd_inode(fd.get()) == h.inode);
  }
  SECTION("bind mount") {
    auto h = t::hold_ns_by_bind_mount(tree);
    CHECK_FALSE(some_task_in(h.inode, "net"));
    struct stat st;
    REQUIRE(stat(h.mount_path.c_str(), &st) == 0);
    CHECK(st.st_ino == h.inode);
    CHECK(mounted_under(h.mount_path));
    tree.unmount_ns(h.mount_path);
    CHECK_FALSE(mounted_under(h.mount_path));
  }
  SECTION("hidden user ns ancestor") {
    auto h = t::hide_user_ns_ancestor(tree);
    CHECK(h.kind == t::HoldKind::ParentOnly);
    CHECK_FALSE(some_task_in(h.inode, "user"));
    CHECK(some_task_in(h.child_inode, "user"));
    t::UniqueFd child = t::open_ns(h.holder_pid, "user");
    CHECK(t::oracle_parent_inode(child.get()) == std::optional<ino_t>(h.inode));
    // The ancestor's own parent is our user ns.
    t::UniqueFd anc = t::open_held_ns(h);
    CHECK(t::oracle_parent_inode(anc.get()) == std::optional<ino_t>(t::oracle_ns_inode(getpid(), "user")));
  }
  SECTION("hidden pid ns ancestor") {
    auto h = t::hide_pid_ns_ancestor(tree);
    CHECK_FALSE(some_task_in(h.inode, "pid"));
    CHECK_FALSE(some_task_in(h.child_inode, "pid"));
    t::UniqueFd anc = t::open_held_ns(h);
    CHECK(t::oracle_fd_inode(anc.get()) == h.inode);
    CHECK(t::oracle_parent_inode(anc.get()) == std::optional<ino_t>(t::oracle_ns_inode(getpid(), "pid")));
    // A held, empty pid ns: nothing can be translated into it.
    t::UniqueFd mine = t::open_ns(getpid(), "pid");
    CHECK(t::oracle_ioctl_translate(getpid(), mine.get(), anc.get()) == std::optional<pid_t>(0));
  }
  SECTION("hidden user ns owner") {
    auto h = t::hide_user_ns_owner(tree);
    CHECK(h.kind == t::HoldKind::OwnerOnly);
    CHECK_FALSE(some_task_in(h.inode, "user"));
    CHECK_FALSE(some_task_in(h.child_inode, "net"));
    t::UniqueFd anc = t::open_held_ns(h);
    CHECK(t::oracle_fd_inode(anc.get()) == h.inode);
  }
}

TEST_CASE("dead agents give clear errors, an init takes its namespace down", "[nstree]") {
  t::ProcTree tree;
  auto s = t::make_seed000_tree(tree);
  pid_t th = tree.spawn_thread(s.t5);
  tree.exit_agent(s.t2);  // init of ns1: t3, t4, t5 die with it
  for (pid_t p : {s.t2, s.t3, s.t4, s.t5, th}) {
    CHECK_FALSE(tree.alive(p));
    CHECK_FALSE(pid_exists(p));
  }
  CHECK(tree.alive(s.t1));
  CHECK_THROWS_AS(tree.spawn(s.t3), t::AgentGone);
  CHECK_THROWS_AS(tree.exit_agent(s.t5), t::AgentGone);
  CHECK_THROWS_AS(tree.spawn_thread(s.t4), t::AgentGone);
  CHECK_THROWS_AS(tree.thread_setns(th, ns_path(s.t1, "net")), t::AgentGone);
  CHECK_THROWS_AS(tree.spawn(999999999), t::HarnessError);
  CHECK(tree.live_agents() == std::vector<pid_t>{s.t1});
  // t1 can make new children in our pid ns after that.
  pid_t again = tree.spawn(s.t1, CLONE_NEWPID);
  CHECK(t::pid_in_ns_of(again) == 1);
  // Killed behind the tree's back: the next command says so.
  pid_t victim = tree.spawn(s.t1, 0);
  REQUIRE(kill(victim, SIGKILL) == 0);
  CHECK_THROWS_AS(tree.hold_ns_fd(victim, ns_path(s.t1, "net")), t::AgentGone);
  // An orphan (its parent exits) is adopted by the test process and still reaped.
  pid_t mid = tree.spawn(s.t1, 0);
  pid_t orphan = tree.spawn(mid, 0);
  tree.exit_agent(mid);
  CHECK(tree.alive(orphan));
  tree.exit_agent(orphan);
  CHECK_FALSE(pid_exists(orphan));
  CHECK(no_zombie_children());
}

TEST_CASE("the ProcTree destructor leaves no process, zombie or mount behind", "[nstree]") {
  std::vector<pid_t> pids;
  std::string mount_path;
  {
    t::ProcTree tree;
    t::make_seed000_tree(tree);
    t::make_ns_hierarchy5(tree);
    pid_t u = tree.spawn(0, CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET);
    tree.spawn_thread(u);
    pid_t mid = tree.spawn(0, 0);
    tree.spawn(tree.spawn(mid, 0), CLONE_NEWPID);
    mount_path = t::hold_ns_by_bind_mount(tree).mount_path;
    t::hide_pid_ns_ancestor(tree);
    pids = tree.all_pids();
  }
  REQUIRE(pids.size() > 15);
  for (pid_t p : pids) {
    INFO("pid " << p);
    CHECK_FALSE(tid_exists(p));
  }
  CHECK(no_zombie_children());
  CHECK_FALSE(mounted_under(mount_path));
  struct stat st;
  CHECK(stat(mount_path.substr(0, mount_path.rfind('/')).c_str(), &st) != 0);
}

TEST_CASE("the ProcTree destructor cleans up when a test fails mid-way", "[nstree]") {
  std::vector<pid_t> pids;
  std::string mount_path;
  auto failing_test = [&] {
    t::ProcTree tree;
    auto chain = t::make_chain(tree, 5);
    tree.spawn_thread(chain.back());
    mount_path = tree.bind_mount_ns(chain[2], "pid");
    pids = tree.all_pids();
    throw std::runtime_error("simulated test failure");
  };
  CHECK_THROWS_AS(failing_test(), std::runtime_error);
  REQUIRE(pids.size() == 6);
  for (pid_t p : pids) CHECK_FALSE(tid_exists(p));
  CHECK(no_zombie_children());
  REQUIRE_FALSE(mount_path.empty());
  CHECK_FALSE(mounted_under(mount_path.substr(0, mount_path.rfind('/'))));
}

TEST_CASE("a stuck agent fails the command with a timeout, and is still cleaned up", "[nstree]") {
  std::vector<pid_t> pids;
  {
    t::ProcTree tree(std::chrono::milliseconds(300));
    pid_t a = tree.spawn(0, CLONE_NEWPID);
    pid_t b = tree.spawn(a, 0);
    REQUIRE(kill(b, SIGSTOP) == 0);
    try {
      tree.spawn_thread(b);
      FAIL("a stopped agent should time out");
    } catch (const t::AgentGone&) {
      FAIL("a stopped agent is not gone");
    } catch (const t::HarnessError& e) {
      CHECK(std::string(e.what()).find("did not answer") != std::string::npos);
    }
    CHECK_THROWS_AS(tree.spawn(b), t::HarnessError);  // out of sync: refused from now on
    pids = tree.all_pids();
  }
  for (pid_t p : pids) CHECK_FALSE(tid_exists(p));
  CHECK(no_zombie_children());
}
