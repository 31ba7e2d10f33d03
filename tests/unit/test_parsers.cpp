// Parser fixtures: /proc/PID/status, /proc/PID/stat, mountinfo and ns links, including garbage.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "mountinfo.h"
#include "ns_link.h"
#include "proc_stat.h"
#include "proc_status.h"

using namespace pidns;

namespace {
const char* kStatus =
    "Name:\tsleep\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t21776\n"
    "Ngid:\t0\n"
    "Pid:\t21776\n"
    "PPid:\t21729\n"
    "TracerPid:\t0\n"
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t100\t101\t102\t103\n"
    "FDSize:\t64\n"
    "Groups:\t4 24 27 \n"
    "NStgid:\t21776\t5\t1\n"
    "NSpid:\t21776\t5\t1\n"
    "NSpgid:\t21776\t5\t1\n"
    "NSsid:\t21729\t1\t0\n"
    "VmPeak:\t    8120 kB\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001ffffffffff\n"
    "CapEff:\t000001ffffffffff\n"
    "CapBnd:\t000001ffffffffff\n";

std::string replace_line(std::string text, const std::string& key, const std::string& line) {
    auto pos = text.find(key + ":");
    REQUIRE(pos != std::string::npos);
    auto end = text.find('\n', pos);
    text.replace(pos, end - pos, line);
    return text;
}
}  // namespace

TEST_CASE("status: the credentials a caller is judged by parse alone") {
    auto c = parse_status_credentials(kStatus);
    REQUIRE(c.ok());
    CHECK(c->state == 'S');
    CHECK(c->uid == std::array<std::uint32_t, 4>{1000, 1001, 1002, 1003});
    CHECK(c->gid == std::array<std::uint32_t, 4>{100, 101, 102, 103});
    CHECK(c->cap_eff == 0x1ffffffffffull);
    CHECK(parse_status_credentials(replace_line(kStatus, "State", "State:\tZ (zombie)"))->state == 'Z');
    for (const char* key : {"State", "Uid", "Gid", "CapEff"}) {
        INFO(key);
        auto bad = parse_status_credentials(replace_line(kStatus, key, "Nothing:\t1"));
        REQUIRE(!bad.ok());
        CHECK(bad.error().code == Errc::parse);
    }
    CHECK(!parse_status_credentials(replace_line(kStatus, "Uid", "Uid:\t1 2 3")).ok());
    CHECK(!parse_status_credentials(replace_line(kStatus, "CapEff", "CapEff:\tzz")).ok());
}

TEST_CASE("status: the seed's nested example parses") {
    auto st = parse_proc_status(kStatus);
    REQUIRE(st.ok());
    CHECK(st->tgid == 21776);
    CHECK(st->pid == 21776);
    CHECK(st->ppid == 21729);
    CHECK(st->uid == std::array<std::uint32_t, 4>{1000, 1001, 1002, 1003});
    CHECK(st->gid == std::array<std::uint32_t, 4>{100, 101, 102, 103});
    CHECK(st->cap_eff == 0x1ffffffffffull);
    CHECK(st->cap_prm == 0x1ffffffffffull);
    CHECK(st->nspid == std::vector<std::int32_t>{21776, 5, 1});
    CHECK(st->nstgid == std::vector<std::int32_t>{21776, 5, 1});
    CHECK(st->nspgid == std::vector<std::int32_t>{21776, 5, 1});
    CHECK(st->nssid == std::vector<std::int32_t>{21729, 1, 0});
}

TEST_CASE("status: missing, malformed and inconsistent fields are errors naming the field") {
    struct Case {
        std::string key, line, expect;
    } cases[] = {
        {"NSpid", "NSpid:\t", "NSpid"},
        {"NSpid", "NSpid:\t21776\tx\t1", "NSpid"},
        {"NSpid", "NSpid:\t21776\t5", "different lengths"},
        {"NSpid", "NSpid:\t9\t5\t1", "do not start"},
        {"Uid", "Uid:\t1\t2\t3", "Uid"},
        {"Uid", "Uid:\t1\t2\t3\t99999999999", "Uid"},
        {"Tgid", "Tgid:\t-4", "Tgid"},
        {"Tgid", "Tgid:\t4294967296", "Tgid"},
        {"CapEff", "CapEff:\tzz", "CapEff"},
        {"CapPrm", "CapPrm:\t-1", "CapPrm"},
        {"PPid", "Xpid:\t1", "PPid"},
    };
    for (const auto& c : cases) {
        INFO(c.line);
        auto st = parse_proc_status(replace_line(kStatus, c.key, c.line));
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::parse);
        CHECK(st.error().message.find(c.expect) != std::string::npos);
    }
}

TEST_CASE("status: a task released while the kernel printed it is not_found, not a parse error") {
    // Read on Linux 6.18 from a child being reaped (555 of 228,788 reads of /proc/PID/status in a
    // loop racing waitpid): Pid from the /proc entry, Tgid, PPid and the NS* chains 0.
    const char* released =
        "Name:\trel\n"
        "State:\tX (dead)\n"
        "Tgid:\t0\n"
        "Ngid:\t0\n"
        "Pid:\t28617\n"
        "PPid:\t0\n"
        "TracerPid:\t0\n"
        "Uid:\t0\t0\t0\t0\n"
        "Gid:\t0\t0\t0\t0\n"
        "FDSize:\t0\n"
        "Groups:\t \n"
        "NStgid:\t0\n"
        "NSpid:\t0\n"
        "NSpgid:\t0\n"
        "NSsid:\t0\n"
        "Kthread:\t0\n"
        "Threads:\t0\n"
        "CapInh:\t0000000000000000\n"
        "CapPrm:\t0000000000000000\n"
        "CapEff:\t0000000000000000\n";
    auto st = parse_proc_status(released);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::not_found);
    CHECK(st.error().message == "process 28617 exited while its status was read");
    // Nested: the chains of a released task are 0 at every level, and Tgid alone 0 says the same.
    auto nested = replace_line(replace_line(replace_line(replace_line(replace_line(kStatus, "Tgid", "Tgid:\t0"), "NStgid",
                                                                      "NStgid:\t0\t0\t0"),
                                                         "NSpid", "NSpid:\t0\t0\t0"),
                                            "NSpgid", "NSpgid:\t0\t0\t0"),
                               "NSsid", "NSsid:\t0\t0\t0");
    CHECK(parse_proc_status(nested).error().code == Errc::not_found);
    CHECK(parse_proc_status(replace_line(kStatus, "Tgid", "Tgid:\t0")).error().code == Errc::not_found);
    // A chain that does not start with Pid in a live task's status stays a parse error.
    CHECK(parse_proc_status(replace_line(kStatus, "NSpid", "NSpid:\t9\t5\t1")).error().code == Errc::parse);
}

TEST_CASE("status: truncated at every byte never crashes and never succeeds without all fields") {
    const std::string full = kStatus;
    const auto cut_after = full.find("CapEff");
    for (std::size_t n = 0; n < full.size(); ++n) {
        auto st = parse_proc_status(std::string_view(full).substr(0, n));
        if (n < cut_after) CHECK_FALSE(st.ok());
    }
}

TEST_CASE("stat: comm with spaces and parentheses, field 22 is the start time") {
    std::string text = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
    auto st = parse_proc_stat(text);
    REQUIRE(st.ok());
    CHECK(st->pid == 1234);
    CHECK(st->state == 'S');
    CHECK(st->ppid == 1);
    CHECK(st->flags == 4194560);
    CHECK((st->flags & kPfExiting) == 0);
    CHECK(st->start_time == 987654);
    // A zombie leader (its main thread called pthread_exit()): state Z, PF_EXITING set.
    auto z = parse_proc_stat("14897 (zl) Z 14895 14881 13856 0 -1 4227084 85 0 0 0 0 0 0 0 20 0 2 0 781659 0 0");
    REQUIRE(z.ok());
    CHECK(z->state == 'Z');
    CHECK((z->flags & kPfExiting) != 0);
}

TEST_CASE("stat: garbage is rejected") {
    for (const char* bad : {"", "1234", "1234 (x", "x (y) S 1", "1234 (y) S 1 2 3", "1234 (y) SS 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 5",
                            "1234 (y) S -1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 5",
                            "1234 (y) S 1 1 1 1 1 x 1 1 1 1 1 1 1 1 1 1 1 1 5"}) {
        INFO(bad);
        CHECK_FALSE(parse_proc_stat(bad).ok());
    }
}

TEST_CASE("ns links parse and reject garbage") {
    auto l = parse_ns_link("pid:[4026531836]");
    REQUIRE(l.ok());
    CHECK(l->type == NsType::pid);
    CHECK(l->inode == 4026531836u);
    CHECK(parse_ns_link("cgroup:[1]")->type == NsType::cgroup);
    for (const char* bad : {"", "pid", "pid:", "pid:[]", "pid:[x]", "pid:[12", "foo:[12]", "pid:[0]", "/dev/null",
                            "pid:[99999999999999999999999]", "socket:[1234]", "anon_inode:[eventfd]"}) {
        INFO(bad);
        CHECK_FALSE(parse_ns_link(bad).ok());
    }
}

TEST_CASE("mountinfo: nsfs bind mounts are found, paths unescaped") {
    const char* text =
        "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "612 29 0:4 net:[4026532449] /run/netns/blue rw shared:263 - nsfs nsfs rw\n"
        "613 29 0:4 pid:[4026532500] /tmp/with\\040space rw - nsfs nsfs rw\n"
        "614 29 0:4 / /tmp/nsfsroot rw - nsfs nsfs rw\n";
    auto entries = parse_mountinfo(text);
    REQUIRE(entries.ok());
    REQUIRE(entries->size() == 5);
    CHECK((*entries)[1].mount_point == "/mnt2");
    CHECK((*entries)[1].fstype == "ext3");
    auto ns = nsfs_mounts(*entries);
    REQUIRE(ns.size() == 2);
    CHECK(ns[0].ns.type == NsType::net);
    CHECK(ns[0].ns.inode == 4026532449u);
    CHECK(ns[0].mount_point == "/run/netns/blue");
    CHECK(ns[1].ns.type == NsType::pid);
    CHECK(ns[1].mount_point == "/tmp/with space");
}

TEST_CASE("mountinfo: malformed lines are errors with the line number") {
    for (const char* bad : {"x 1 0:1 / / rw - proc proc rw\n", "1 1 0:1 / / rw proc proc rw\n", "1 1 0:1 / / rw -\n",
                            "22 1 0:21 / /proc rw - proc proc rw\n1 2\n"}) {
        INFO(bad);
        auto r = parse_mountinfo(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("line") != std::string::npos);
    }
    CHECK(unescape_mount_path("a\\") == "a\\");
    CHECK(unescape_mount_path("a\\04") == "a\\04");
    CHECK(unescape_mount_path("\\134x") == "\\x");
}

TEST_CASE("parsers survive random garbage") {
    std::mt19937 rng(12345);
    const std::string alphabet = "0123456789 \t\n:()[]-abcdefNSpidtgUuGC\\";
    for (int i = 0; i < 5000; ++i) {
        std::string s(rng() % 300, ' ');
        for (auto& c : s) c = alphabet[rng() % alphabet.size()];
        (void)parse_proc_status(s);
        (void)parse_proc_stat(s);
        (void)parse_mountinfo(s);
        (void)parse_ns_link(s);
    }
    SUCCEED("no crash, no sanitizer report");
}
