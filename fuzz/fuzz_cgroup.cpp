// libFuzzer target: parse_proc_cgroup (/proc/PID/cgroup), and over each path it accepts
// systemd_placement, container_of, container_candidates (never a path component a walk could
// misread: no '/', no "." or "..") and unescape_unit_name.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cgroup.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = pidns::fuzz::as_text(data, size);
    auto r = pidns::parse_proc_cgroup(text);
    if (!r) {
        FUZZ_CHECK(r.error().code == pidns::Errc::parse);
        FUZZ_CHECK(r.error().message.starts_with("/proc/PID/cgroup line "));
        return 0;
    }
    FUZZ_CHECK(r->size() <= 64);
    for (const auto& l : *r) {
        FUZZ_CHECK(!l.path.empty() && l.path.front() == '/');
        FUZZ_CHECK(l.hierarchy != 0 || l.controllers.empty());
        const auto p = pidns::systemd_placement(l.path);
        FUZZ_CHECK(!p.slice.empty());
        FUZZ_CHECK(p.slice == "-.slice" || l.path.find(p.slice) != std::string::npos);
        FUZZ_CHECK(p.unit.empty() || l.path.find(p.unit) != std::string::npos);
        if (auto c = pidns::container_of(l.path)) {
            FUZZ_CHECK(!c->id.empty());
            FUZZ_CHECK(c->depth >= 1);
            FUZZ_CHECK(pidns::container_engine_name(c->engine) != "unknown");
            FUZZ_CHECK(c->pod_uid.empty() || c->pod_uid.size() == 36);
        }
        for (const auto& c : pidns::container_candidates(l.path)) {
            FUZZ_CHECK(!c.id.empty() && c.id.size() <= 76);
            FUZZ_CHECK(c.depth >= 1);
            FUZZ_CHECK(c.id.find('/') == std::string::npos && c.ns.find('/') == std::string::npos);
            FUZZ_CHECK(c.id != "." && c.id != ".." && c.ns != "." && c.ns != "..");
            FUZZ_CHECK(l.path.find(c.id) != std::string::npos);
        }
        const auto u = pidns::unescape_unit_name(l.path);
        FUZZ_CHECK(u.size() <= l.path.size());
    }
    if (auto s = pidns::systemd_cgroup_path(*r)) FUZZ_CHECK(!s->empty());
    return 0;
}
