// Round-trips every enum<->string table: each value through its name and back, names distinct,
// and where two tables meet (the daemon's error names and the client's reading of them, the
// engine names printed and the engine names accepted) that they agree. The kernel's own table of
// namespace types is checked in tests/kernel/test_ns_types.cpp.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "cgroup.h"
#include "client.h"
#include "engine_state.h"
#include "errors.h"
#include "index.h"
#include "ns_link.h"
#include "ns_type.h"
#include "polkit_rules.h"
#include "result.h"

using namespace pidns;

namespace {

// Every value of an enum whose name table answers `unknown` past its last value.
template <class E, class F>
std::vector<E> values_of(F name_of, std::string_view unknown) {
    std::vector<E> out;
    for (unsigned i = 0; i < 256; ++i) {
        const auto e = static_cast<E>(i);
        if (std::string_view(name_of(e)) == unknown) break;
        out.push_back(e);
    }
    return out;
}

// Splits "a,b,c" at commas.
std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    for (std::size_t comma; (comma = s.find(',', at)) != std::string::npos; at = comma + 1) out.push_back(s.substr(at, comma - at));
    out.push_back(s.substr(at));
    return out;
}

}  // namespace

TEST_CASE("every namespace type round-trips through its name, its clone flag and its nsfs link text") {
    REQUIRE(kAllNsTypes.size() == kNsTypeCount);
    std::set<std::string_view> names;
    std::set<int> flags;
    for (std::size_t i = 0; i < kAllNsTypes.size(); ++i) {
        const NsType t = kAllNsTypes[i];
        INFO("type " << ns_type_name(t));
        CHECK(ns_type_index(t) == i);  // the table is dense: index i is the i-th type
        CHECK(ns_type_from_name(ns_type_name(t)) == t);
        CHECK(ns_type_from_clone_flag(ns_type_clone_flag(t)) == t);
        const int flag = ns_type_clone_flag(t);
        CHECK((flag != 0 && (flag & (flag - 1)) == 0));  // one CLONE_NEW* bit
        const auto link = parse_ns_link(std::string(ns_type_name(t)) + ":[4026531836]");
        REQUIRE(link.ok());
        CHECK(link->type == t);
        CHECK(link->inode == 4026531836u);
        names.insert(ns_type_name(t));
        flags.insert(flag);
    }
    CHECK(names.size() == kNsTypeCount);
    CHECK(flags.size() == kNsTypeCount);
}

TEST_CASE("names and flags outside the namespace type table are refused") {
    for (const char* bad : {"", "PID", "pid_for_children", "time_for_children", "pid ", "mount"}) {
        INFO("name '" << bad << "'");
        CHECK_FALSE(ns_type_from_name(bad));
        CHECK_FALSE(parse_ns_link(std::string(bad) + ":[1]").ok());
    }
    int all = 0;
    for (auto t : kAllNsTypes) all |= ns_type_clone_flag(t);
    for (int flag : {0, -1, all, 0x11 /* CSIGNAL | ... */}) CHECK_FALSE(ns_type_from_clone_flag(flag));
}

TEST_CASE("every set of holder bits round-trips through its text, and no holder is none") {
    const std::vector<std::uint8_t> bits = {kHeldByProcess, kHeldByTask, kHeldByFd, kHeldByMount, kHeldAsAncestor};
    // The table's own words, one a bit.
    std::vector<std::string> word;
    for (auto b : bits) word.push_back(holders_to_string(b));
    CHECK(std::set<std::string>(word.begin(), word.end()).size() == bits.size());
    CHECK(holders_to_string(0) == "none");
    std::set<std::string> texts;
    for (unsigned set = 0; set < (1u << bits.size()); ++set) {
        std::uint8_t h = 0;
        for (std::size_t i = 0; i < bits.size(); ++i)
            if (set & (1u << i)) h |= bits[i];
        const std::string text = holders_to_string(h);
        INFO("holders " << int(h) << ": " << text);
        texts.insert(text);
        if (h == 0) continue;
        // Back from the text: each comma-separated word is exactly one bit's.
        std::uint8_t back = 0;
        for (const auto& w : split(text)) {
            const auto it = std::find(word.begin(), word.end(), w);
            REQUIRE(it != word.end());
            back |= bits[static_cast<std::size_t>(it - word.begin())];
        }
        CHECK(back == h);
    }
    CHECK(texts.size() == 1u << bits.size());
}

TEST_CASE("every container engine's name is distinct, and --container-state takes it for the engines that keep state") {
    const auto engines = values_of<ContainerEngine>(container_engine_name, "unknown");
    CHECK(engines.size() == 6);  // docker, podman, containerd, cri-o, lxc, nspawn
    std::set<std::string> names;
    for (auto e : engines) {
        const std::string name(container_engine_name(e));
        INFO("engine " << name);
        names.insert(name);
        auto roots = engine_roots({name + ":/state/" + name});
        // The engines pidnsd reads state of (EngineRoots); LXC and nspawn are named from their cgroups alone.
        const std::vector<std::string>* list = nullptr;
        if (roots.ok()) {
            list = e == ContainerEngine::docker       ? &roots->docker
                   : e == ContainerEngine::podman     ? &roots->podman
                   : e == ContainerEngine::containerd ? &roots->containerd
                   : e == ContainerEngine::crio       ? &roots->crio
                                                      : nullptr;
        }
        if (e == ContainerEngine::lxc || e == ContainerEngine::nspawn) {
            CHECK_FALSE(roots.ok());
            continue;
        }
        REQUIRE(list != nullptr);
        CHECK(*list == std::vector<std::string>{"/state/" + name});
    }
    CHECK(names.size() == engines.size());
}

TEST_CASE("every error class has a distinct name, and the D-Bus name pidnsd sends for it is one its clients tell apart") {
    const auto all = values_of<Errc>(errc_name, "unknown");
    CHECK(all.size() == 15);
    std::set<std::string_view> names;
    std::set<client::ErrorKind> kinds;
    for (auto e : all) {
        INFO("error class " << errc_name(e));
        names.insert(errc_name(e));
        const std::string bus_name = pidnsd::dbus_error_name(e);
        const auto kind = client::error_kind(bus_name);
        // A specific name is read back as a specific kind; only Failed is "failed".
        CHECK((kind == client::ErrorKind::failed) == (bus_name == bus::kErrorFailed));
        CHECK(kind != client::ErrorKind::unavailable);
        if (kind != client::ErrorKind::failed) kinds.insert(kind);
        CHECK(make_error(e, "x").describe() == std::string(errc_name(e)) + ": x");
    }
    CHECK(names.size() == all.size());
    // Every kind a client knows (but unavailable, which the bus itself reports, and failed) is sent for some class.
    CHECK(kinds == std::set<client::ErrorKind>{client::ErrorKind::no_such_namespace, client::ErrorKind::not_pid_namespace,
                                               client::ErrorKind::no_such_process, client::ErrorKind::ambiguous_namespace,
                                               client::ErrorKind::access_denied, client::ErrorKind::invalid_args,
                                               client::ErrorKind::limits_exceeded});
}

TEST_CASE("every polkit implicit authorization word parses to its own value, and nothing else does") {
    std::set<pidnsd::Implicit> seen;
    for (const char* word : {"no", "yes", "auth_self", "auth_admin", "auth_self_keep", "auth_admin_keep"}) {
        INFO(word);
        const auto v = pidnsd::parse_implicit(word);
        REQUIRE(v);
        seen.insert(*v);
        CHECK(pidnsd::parse_implicit(std::string("  ") + word + "\n") == v);  // as polkitd trims it
    }
    CHECK(seen.size() == 6);
    for (const char* bad : {"", "YES", "auth", "auth_self_keep_always"}) CHECK_FALSE(pidnsd::parse_implicit(bad));
}

TEST_CASE("every signal kind of the client library has its own word") {
    using Kind = client::NamespaceEvent::Kind;
    const std::set<std::string> words = {client::to_string(Kind::added), client::to_string(Kind::removed),
                                         client::to_string(Kind::resync)};
    CHECK(words.size() == 3);
    CHECK(words.count("?") == 0);
}
