// libFuzzer target: the engines' state files pidnsd names containers from (lib/engine_state.h):
// parse_docker_config, parse_oci_annotations, parse_storage_containers over the input, and
// engine_text over every string they return.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine_state.h"
#include "fuzz_check.h"

namespace {

// engine_text keeps a string whole or drops it; what it keeps has no control byte.
void check_text(const std::string& s) {
    const auto t = pidns::engine_text(s);
    FUZZ_CHECK(t.empty() || t == s);
    FUZZ_CHECK(t.size() <= 253);
    for (unsigned char c : t) FUZZ_CHECK(c >= 0x20 && c != 0x7f);
}

void check_names(const pidns::EngineNames& n) {
    for (const auto* s : {&n.name, &n.pod_id, &n.pod_name, &n.pod_namespace, &n.pod_uid}) check_text(*s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = pidns::fuzz::as_text(data, size);
    check_text(std::string(text));
    if (auto d = pidns::parse_docker_config(text)) check_names(*d);
    if (auto o = pidns::parse_oci_annotations(text)) {
        check_names(o->names);
        FUZZ_CHECK(!o->names.pod_id.empty() || !o->names.pod_name.empty() || !o->cri ||
                   text.find("container-type") != std::string::npos || text.find("ContainerType") != std::string::npos);
    }
    if (auto s = pidns::parse_storage_containers(text)) {
        FUZZ_CHECK(s->size() <= size);
        for (const auto& [id, name] : *s) {
            FUZZ_CHECK(!id.empty());
            check_text(name);
        }
    }
    return 0;
}
