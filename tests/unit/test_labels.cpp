// /etc/passwd parsing and the user-name cache pidnsd's Describe* methods use (files only).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "labels.h"

using namespace pidns;

TEST_CASE("parse_passwd: uid to name, the first line wins, malformed and NIS lines skipped") {
    const auto m = parse_passwd(
        "root:x:0:0:root:/root:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        "toor:x:0:0::/root:/bin/sh\n"   // a second name for uid 0: getpwuid gives the first
        "broken\n"
        "no-uid:x::0::/:/bin/sh\n"
        "big:x:4294967295:0::/:/bin/sh\n"  // (uid_t)-1 is no uid
        "+nis::::::\n"
        ":x:5:5::/:/bin/sh\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash");  // no final newline
    CHECK(m.size() == 3);
    CHECK(m.at(0) == "root");
    CHECK(m.at(65534) == "nobody");
    CHECK(m.at(1000) == "alice");
    CHECK(parse_passwd("").empty());
}

TEST_CASE("UserNames: reads the file, and again when it changes") {
    char tmpl[] = "/tmp/pidns-passwd.XXXXXX";
    const int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    struct Remove {
        const char* p;
        ~Remove() { unlink(p); }
    } remove{tmpl};
    std::ofstream(tmpl) << "root:x:0:0::/root:/bin/sh\n";
    UserNames names(tmpl);
    CHECK(names.name_of(0) == "root");
    CHECK_FALSE(names.name_of(1000));
    std::ofstream(tmpl) << "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";
    // Looked at again at most once per second.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    CHECK(names.name_of(1000) == "alice");
    UserNames missing("/nonexistent/passwd");
    CHECK_FALSE(missing.name_of(0));
}

TEST_CASE("cgroup_prefix and cgroup_within find a container's cgroup and what lies below it") {
    CHECK(cgroup_prefix("/lxc.payload.c1/system.slice/docker-x.scope", 1) == "/lxc.payload.c1");
    CHECK(cgroup_prefix("/system.slice/docker-x.scope/init", 2) == "/system.slice/docker-x.scope");
    CHECK(cgroup_prefix("/a/b", 5) == "/a/b");
    CHECK(cgroup_within("/lxc.payload.c1/init.scope", "/lxc.payload.c1"));
    CHECK(cgroup_within("/lxc.payload.c1", "/lxc.payload.c1"));
    CHECK_FALSE(cgroup_within("/lxc.payload.c10", "/lxc.payload.c1"));  // a sibling whose name extends it
    CHECK_FALSE(cgroup_within("/system.slice", "/lxc.payload.c1"));
    CHECK(cgroup_within("/anything", "/"));
}

TEST_CASE("cgroup_upto cuts a path after the unit's own component, and finds nothing for a mere prefix") {
    CHECK(cgroup_upto("/machine.slice/systemd-nspawn@web.service/payload/init.scope", "systemd-nspawn@web.service") ==
          "/machine.slice/systemd-nspawn@web.service");
    CHECK(cgroup_upto("/system.slice/holder.service", "holder.service") == "/system.slice/holder.service");
    CHECK(cgroup_upto("//system.slice//holder.service/", "holder.service") == "//system.slice//holder.service");
    CHECK(cgroup_upto("/system.slice/holder.service2", "holder.service").empty());  // a component, not a prefix
    CHECK(cgroup_upto("/system.slice/x.service", "").empty());
    CHECK(cgroup_upto("", "x.service").empty());
}
