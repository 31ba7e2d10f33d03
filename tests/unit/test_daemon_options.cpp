// pidnsd's command line and its error-name table.
#include <catch2/catch.hpp>

#include <vector>

#include "errors.h"
#include "options.h"

using namespace pidnsd;

namespace {
pidns::Result<Options> parse(std::vector<const char*> args) { return parse_options(args); }
}  // namespace

TEST_CASE("options: with none given, the system bus, proc connector, polkit, 2 s poll, 5 s verify and an 8 MiB buffer") {
    auto o = parse({});
    REQUIRE(o.ok());
    CHECK(o->bus == BusKind::system);
    CHECK(o->log_level == "info");
    CHECK(o->proc_connector);
    CHECK(o->bpf);
    CHECK(o->poll_interval == std::chrono::seconds(2));
    CHECK(o->polkit);
    CHECK(o->verify_interval == std::chrono::seconds(5));
    CHECK(o->netlink_buffer == 8u << 20);
}

TEST_CASE("options: every option, with = and as a separate word") {
    auto o = parse({"--bus=session", "--log-level", "debug", "--no-proc-connector", "--poll-interval=250ms"});
    REQUIRE(o.ok());
    CHECK(o->bus == BusKind::session);
    CHECK(o->log_level == "debug");
    CHECK_FALSE(o->proc_connector);
    CHECK(o->poll_interval == std::chrono::milliseconds(250));
    auto a = parse({"--bus", "unix:path=/run/x"});
    REQUIRE(a.ok());
    CHECK(a->bus == BusKind::address);
    CHECK(a->bus_address == "unix:path=/run/x");
    CHECK(parse({"--help"})->help);
    CHECK(parse({"-h"})->help);
    CHECK(parse({"--version"})->version);
    CHECK_FALSE(parse({"--polkit=no"})->polkit);
    CHECK_FALSE(parse({"--no-bpf"})->bpf);
    CHECK_FALSE(parse({"--no-bpf=yes"}).ok());
    CHECK(parse({"--polkit", "auto"})->polkit);
}

TEST_CASE("options: an interval is seconds, or a number with s or ms, and garbage is refused") {
    CHECK(*parse_interval("2") == std::chrono::seconds(2));
    CHECK(*parse_interval("1.5s") == std::chrono::milliseconds(1500));
    CHECK(*parse_interval("10ms") == std::chrono::milliseconds(10));
    for (const char* bad : {"", "s", "ms", "5ms", "2h", "-1s", "abc", "1e9", "nan", "inf"})
        CHECK_FALSE(parse_interval(bad).ok());
}

TEST_CASE("options: --verify-interval takes off or an interval, --netlink-buffer a size in K or M, and a bad one names the option") {
    CHECK(parse({"--verify-interval=off"})->verify_interval.count() == 0);
    CHECK(parse({"--verify-interval", "250ms"})->verify_interval == std::chrono::milliseconds(250));
    CHECK(parse({"--netlink-buffer=64M"})->netlink_buffer == 64u << 20);
    CHECK(parse({"--netlink-buffer", "4K"})->netlink_buffer == 4096);
    CHECK(parse({"--netlink-buffer=0"})->netlink_buffer == 0);
    CHECK(*parse_size("1G", "--x") == 1u << 30);
    CHECK(*parse_size("512k", "--x") == 512u << 10);
    for (const char* bad : {"", "K", "4095", "2G", "1.5M", "-1", "8MB", "99999999999999999999"})
        CHECK_FALSE(parse_size(bad, "--x").ok());
    auto e = parse({"--verify-interval=5ms"});
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message.find("--verify-interval") != std::string::npos);
    auto b = parse({"--netlink-buffer=lots"});
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message.find("--netlink-buffer") != std::string::npos);
}

TEST_CASE("options: bad input names the option and points to --help") {
    for (std::vector<const char*> bad : std::vector<std::vector<const char*>>{
             {"--bus=tcp"}, {"--bus"}, {"--log-level=loud"}, {"--poll-interval=0"}, {"--frobnicate"},
             {"--help=yes"}, {"extra"}, {"--polkit=yes"}}) {
        auto o = parse(bad);
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().code == pidns::Errc::invalid_argument);
        CHECK(o.error().message.find("--help") != std::string::npos);
    }
}

TEST_CASE("errors: every library error class has its D-Bus name") {
    using pidns::Errc;
    CHECK(std::string(dbus_error_name(Errc::not_found)) == "org.pidns.Error.NoSuchProcess");
    CHECK(std::string(dbus_error_name(Errc::no_such_namespace)) == "org.pidns.Error.NoSuchNamespace");
    CHECK(std::string(dbus_error_name(Errc::not_pid_namespace)) == "org.pidns.Error.NotPidNamespace");
    CHECK(std::string(dbus_error_name(Errc::ambiguous)) == "org.pidns.Error.AmbiguousNamespace");
    CHECK(std::string(dbus_error_name(Errc::invalid_argument)) == "org.freedesktop.DBus.Error.InvalidArgs");
    CHECK(std::string(dbus_error_name(Errc::access_denied)) == "org.freedesktop.DBus.Error.AccessDenied");
    // Each reason keeps the name its class had before it was told apart.
    CHECK(std::string(dbus_error_name(Errc::changed)) == "org.pidns.Error.NoSuchProcess");
    CHECK(std::string(dbus_error_name(Errc::unreadable)) == "org.freedesktop.DBus.Error.AccessDenied");
    CHECK(std::string(dbus_error_name(Errc::unidentified)) == "org.freedesktop.DBus.Error.AccessDenied");
    for (auto e : {Errc::parse, Errc::io, Errc::unsupported, Errc::unstable, Errc::moved})
        CHECK(std::string(dbus_error_name(e)) == "org.freedesktop.DBus.Error.Failed");
    CHECK(std::string(dbus_error_name(Errc::too_large)) == "org.freedesktop.DBus.Error.LimitsExceeded");
    // A tree that kept changing is no internal failure: its message does not send anyone to the log.
    CHECK(to_dbus_error(pidns::make_error(Errc::unstable, "freeze it")).getMessage() == "freeze it");
    auto err = to_dbus_error(pidns::make_error(Errc::ambiguous, "pass the id"));
    CHECK(err.getName() == "org.pidns.Error.AmbiguousNamespace");
    CHECK(err.getMessage() == "pass the id (namespace ids: ListNamespaces)");  // the daemon names the method
    CHECK(to_dbus_error(pidns::make_error(Errc::invalid_argument, "pid 0")).getMessage() == "pid 0");
    // The library names no polkit action and no pidnsd: the next step is the daemon's.
    CHECK(to_dbus_error(pidns::make_error(Errc::access_denied, "you may not")).getMessage() ==
          "you may not; run as its user or ask an administrator for org.pidns.inspect");
    CHECK(to_dbus_error(pidns::make_error(Errc::unreadable, "nobody may")).getMessage() == "nobody may");
    CHECK(to_dbus_error(pidns::make_error(Errc::unidentified, "it exited")).getMessage() ==
          "it exited; call again from a live process in pidnsd's pid namespace or below it");
}

TEST_CASE("options: --assume-kernel takes MAJOR.MINOR (or uname -r), refuses the rest and kernels too old") {
    auto o = parse({"--assume-kernel=5.14"});
    REQUIRE(o.ok());
    REQUIRE(o->assume_kernel);
    CHECK(*o->assume_kernel == pidns::KernelVersion{5, 14});
    auto r = parse({"--assume-kernel", "6.1.0-28-amd64"});
    REQUIRE(r.ok());
    CHECK(*r->assume_kernel == pidns::KernelVersion{6, 1});
    CHECK_FALSE(parse({}).value().assume_kernel);
    for (const char* bad : {"--assume-kernel=6", "--assume-kernel=latest", "--assume-kernel=6.x", "--assume-kernel=4.19",
                            "--assume-kernel=6.1a", "--assume-kernel="}) {
        auto e = parse({bad});
        INFO(bad);
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().message.find("--assume-kernel") != std::string::npos);
    }
}

TEST_CASE("kernel versions: what an assumed kernel takes away from the probed features, never adds") {
    pidns::KernelFeatures all;
    all.ns_get_id = all.pid_ioctls = all.owner_uid = true;
    auto f = pidns::features_of(all, {5, 14});
    CHECK_FALSE(f.ns_get_id);
    CHECK_FALSE(f.pid_ioctls);
    CHECK(f.owner_uid);  // NS_GET_OWNER_UID is 4.11: every supported kernel has it
    CHECK_FALSE(pidns::has_event_filter({6, 1}));
    CHECK(pidns::has_event_filter({6, 6}));
    f = pidns::features_of(all, {6, 11});
    CHECK_FALSE(f.ns_get_id);
    CHECK(f.pid_ioctls);
    CHECK(pidns::features_of(all, {6, 18}).ns_get_id);
    CHECK(pidns::features_of(all, {7, 0}).ns_get_id);
    pidns::KernelFeatures none;
    CHECK_FALSE(pidns::features_of(none, {7, 0}).pid_ioctls);  // a newer version adds nothing
    CHECK(pidns::KernelVersion{5, 15} < pidns::KernelVersion{6, 1});
    CHECK(pidns::KernelVersion{6, 1}.str() == "6.1");
}

TEST_CASE("options: --container-state=ENGINE:DIR, repeated, in order, and a bad one says why") {
    CHECK(parse({})->container_state.empty());
    auto o = parse({"--container-state=docker:/srv/docker", "--container-state", "cri-o:/run/crio"});
    REQUIRE(o);
    CHECK(o->container_state == std::vector<std::string>{"docker:/srv/docker", "cri-o:/run/crio"});
    for (const char* bad : {"--container-state=rkt:/x", "--container-state=docker:srv", "--container-state=docker"}) {
        INFO(bad);
        auto r = parse({bad});
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("--container-state") != std::string::npos);
        CHECK(r.error().message.find("--help") != std::string::npos);
    }
}
