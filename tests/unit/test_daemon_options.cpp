// pidnsd's command line and its error-name table.
#include <catch2/catch.hpp>

#include <vector>

#include "errors.h"
#include "options.h"

using namespace pidnsd;

namespace {
pidns::Result<Options> parse(std::vector<const char*> args) { return parse_options(args); }
}  // namespace

TEST_CASE("options: defaults") {
    auto o = parse({});
    REQUIRE(o.ok());
    CHECK(o->bus == BusKind::system);
    CHECK(o->log_level == "info");
    CHECK(o->proc_connector);
    CHECK(o->poll_interval == std::chrono::seconds(2));
    CHECK(o->polkit);
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
    CHECK(parse({"--polkit", "auto"})->polkit);
}

TEST_CASE("options: intervals") {
    CHECK(*parse_interval("2") == std::chrono::seconds(2));
    CHECK(*parse_interval("1.5s") == std::chrono::milliseconds(1500));
    CHECK(*parse_interval("10ms") == std::chrono::milliseconds(10));
    for (const char* bad : {"", "s", "ms", "5ms", "2h", "-1s", "abc", "1e9", "nan", "inf"})
        CHECK_FALSE(parse_interval(bad).ok());
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
    for (auto e : {Errc::parse, Errc::io, Errc::unsupported})
        CHECK(std::string(dbus_error_name(e)) == "org.freedesktop.DBus.Error.Failed");
    auto err = to_dbus_error(pidns::make_error(Errc::ambiguous, "pass the id"));
    CHECK(err.getName() == "org.pidns.Error.AmbiguousNamespace");
    CHECK(err.getMessage() == "pass the id");
}
