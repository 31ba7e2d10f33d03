// pidnsd's command line parser.
#include "options.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "engine_state.h"

namespace pidnsd {
namespace {

using pidns::Errc;
using pidns::make_error;

constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

pidns::Error bad(const std::string& msg) {
    return make_error(Errc::invalid_argument, msg + "; see pidnsd --help");
}

}  // namespace

pidns::Result<std::chrono::milliseconds> parse_interval(std::string_view text, std::string_view what) {
    double scale = 1000.0;
    std::string_view num = text;
    if (num.ends_with("ms")) {
        scale = 1.0;
        num.remove_suffix(2);
    } else if (num.ends_with("s")) {
        num.remove_suffix(1);
    }
    double v = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (num.empty() || ec != std::errc() || ptr != num.data() + num.size() || !std::isfinite(v))
        return bad(std::string(what) + " '" + std::string(text) + "' is not a duration like 500ms or 2s");
    const double ms = v * scale;
    if (ms < 10 || ms > 3600'000)
        return bad(std::string(what) + " '" + std::string(text) + "' is outside 10ms..1h");
    return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

pidns::Result<std::size_t> parse_size(std::string_view text, std::string_view what) {
    std::string_view num = text;
    std::uint64_t scale = 1;
    if (!num.empty()) {
        switch (num.back()) {
        case 'K': case 'k': scale = 1ull << 10; break;
        case 'M': case 'm': scale = 1ull << 20; break;
        case 'G': case 'g': scale = 1ull << 30; break;
        default: break;
        }
        if (scale != 1) num.remove_suffix(1);
    }
    std::uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (num.empty() || ec != std::errc() || ptr != num.data() + num.size())
        return bad(std::string(what) + " '" + std::string(text) + "' is not a size like 65536, 512K or 8M");
    if (v > (1ull << 30) / scale || (v != 0 && v * scale < 4096))
        return bad(std::string(what) + " '" + std::string(text) + "' is outside 4K..1G (0: the kernel's default)");
    return static_cast<std::size_t>(v * scale);
}

pidns::Result<Options> parse_options(std::span<const char* const> args) {
    Options o;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        std::string_view value;
        bool has_value = false;
        if (auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
            has_value = true;
        }
        auto take = [&](std::string_view name) -> pidns::Result<std::string_view> {
            if (has_value) return value;
            if (i + 1 >= args.size()) return bad("option " + std::string(name) + " needs a value");
            return std::string_view(args[++i]);
        };
        auto no_value = [&]() -> pidns::Status {
            if (has_value) return bad("option " + std::string(a) + " takes no value");
            return pidns::Ok{};
        };
        if (a == "-h" || a == "--help") {
            if (auto s = no_value(); !s) return s.error();
            o.help = true;
        } else if (a == "--version") {
            if (auto s = no_value(); !s) return s.error();
            o.version = true;
        } else if (a == "--no-proc-connector") {
            if (auto s = no_value(); !s) return s.error();
            o.proc_connector = false;
        } else if (a == "--no-bpf") {
            if (auto s = no_value(); !s) return s.error();
            o.bpf = false;
        } else if (a == "--bus") {
            auto v = take(a);
            if (!v) return v.error();
            if (*v == "system") {
                o.bus = BusKind::system;
            } else if (*v == "session") {
                o.bus = BusKind::session;
            } else if (v->find(':') != std::string_view::npos) {
                o.bus = BusKind::address;
                o.bus_address = std::string(*v);
            } else {
                return bad("--bus '" + std::string(*v) + "' is not system, session or an address like unix:path=/run/x");
            }
        } else if (a == "--polkit") {
            auto v = take(a);
            if (!v) return v.error();
            if (*v == "auto")
                o.polkit = true;
            else if (*v == "no")
                o.polkit = false;
            else
                return bad("--polkit '" + std::string(*v) + "' is not auto or no");
        } else if (a == "--log-level") {
            auto v = take(a);
            if (!v) return v.error();
            bool known = false;
            for (auto l : kLevels) known = known || l == *v;
            if (!known) return bad("--log-level '" + std::string(*v) + "' is not one of trace debug info warn error critical off");
            o.log_level = std::string(*v);
        } else if (a == "--poll-interval") {
            auto v = take(a);
            if (!v) return v.error();
            auto d = parse_interval(*v);
            if (!d) return d.error();
            o.poll_interval = *d;
        } else if (a == "--verify-interval") {
            auto v = take(a);
            if (!v) return v.error();
            if (*v == "off") {
                o.verify_interval = std::chrono::milliseconds{0};
            } else {
                auto d = parse_interval(*v, "--verify-interval");
                if (!d) return d.error();
                o.verify_interval = *d;
            }
        } else if (a == "--netlink-buffer") {
            auto v = take(a);
            if (!v) return v.error();
            auto n = parse_size(*v, "--netlink-buffer");
            if (!n) return n.error();
            o.netlink_buffer = *n;
        } else if (a == "--assume-kernel") {
            auto v = take(a);
            if (!v) return v.error();
            auto k = pidns::parse_kernel_version(*v);
            if (!k) return bad("--assume-kernel: " + k.error().message);
            o.assume_kernel = *k;
        } else if (a == "--container-state") {
            auto v = take(a);
            if (!v) return v.error();
            o.container_state.emplace_back(*v);
            if (auto r = pidns::engine_roots(o.container_state); !r) return bad(r.error().message);
        } else {
            return bad("unknown argument '" + std::string(args[i]) + "'");
        }
    }
    return o;
}

std::string usage() {
    return "Usage: pidnsd [OPTIONS]\n"
           "Serves org.pidns (pid translation and the namespace tree) on D-Bus.\n\n"
           "  --bus=system|session|ADDRESS  bus to serve on (default system; ADDRESS like unix:path=/run/x)\n"
           "  --log-level=LEVEL             trace debug info warn error critical off (default info)\n"
           "  --no-proc-connector           do not use kernel process events; rescan /proc periodically\n"
           "  --no-bpf                      find namespace fds by listing every /proc/PID/fd, without the\n"
           "                                BPF iterator (default: the iterator, when the kernel loads it)\n"
           "  --polkit=auto|no              ask polkit (org.pidns.inspect) when the kernel's rule denies\n"
           "                                (default auto: used when polkit is on the bus)\n"
           "  --poll-interval=DURATION      rescan period when polling, e.g. 500ms, 2s (default 2s)\n"
           "  --verify-interval=DURATION|off  period of the pass that compares every process's\n"
           "                                namespace links with the index (default 5s)\n"
           "  --netlink-buffer=SIZE         proc connector receive buffer, e.g. 64M (default 8M, the\n"
           "                                kernel doubles it; 0: the kernel's default)\n"
           "  --assume-kernel=VERSION       use only the kernel interfaces Linux VERSION has (e.g. 5.14,\n"
           "                                6.1, 6.6, 6.11), as on such a kernel (default: all probed)\n"
           "  --container-state=ENGINE:DIR  where ENGINE (docker, podman, containerd, cri-o) keeps the\n"
           "                                state pidnsd names its containers from; may be repeated\n"
           "                                (default: docker:/var/lib/docker, podman:/var/lib/containers/storage,\n"
           "                                containerd:/run/containerd, cri-o:/run/containers/storage)\n"
           "  --version                     print the version and exit\n"
           "  -h, --help                    print this help and exit\n\n"
           "Signals: SIGTERM/SIGINT exit 0, SIGHUP rescans /proc and re-reads polkit's rules.\n"
           "Logs go to the journal when JOURNAL_STREAM is set, else to stderr.\n";
}

}  // namespace pidnsd
