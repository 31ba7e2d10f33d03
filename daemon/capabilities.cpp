// What pidnsd gives up once its model is made.
#include "capabilities.h"

#include <dirent.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pidnsd {

namespace {

constexpr int kCapPerfmon = 38;  // CAP_PERFMON, Linux 5.8
constexpr int kCapBpf = 39;      // CAP_BPF, Linux 5.8

struct Caps {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
};

bool get(Caps& c) { return ::syscall(SYS_capget, &c.header, c.data) == 0; }
bool set(Caps& c) { return ::syscall(SYS_capset, &c.header, c.data) == 0; }

bool has(const Caps& c, int cap) { return (c.data[cap / 32].permitted & (1u << (cap % 32))) != 0; }

void clear(Caps& c, int cap, bool effective_only) {
    const std::uint32_t bit = 1u << (cap % 32);
    c.data[cap / 32].effective &= ~bit;
    if (effective_only) return;
    c.data[cap / 32].permitted &= ~bit;
    c.data[cap / 32].inheritable &= ~bit;
}

std::size_t thread_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

}  // namespace

std::string drop_bpf_capabilities(bool iterator, const std::function<bool()>& pass_startable) {
    Caps c;
    if (!get(c)) return std::string("capget: ") + std::strerror(errno);
    if (!has(c, kCapPerfmon) && !has(c, kCapBpf)) return {};  // nothing to give up
    // Capabilities are per thread: another thread would keep them.
    if (const std::size_t n = thread_count(); n != 1)
        return "pidnsd has " + std::to_string(n) + " threads already: CAP_BPF and CAP_PERFMON kept";
    clear(c, kCapPerfmon, false);
    if (!iterator) clear(c, kCapBpf, false);
    if (!set(c)) return std::string("capset: ") + std::strerror(errno);
    if (!iterator) return {};
    // Can a pass be started without CAP_BPF? Try with it out of the effective set only.
    clear(c, kCapBpf, true);
    if (!set(c)) return std::string("capset: ") + std::strerror(errno) + ": CAP_BPF kept";
    if (pass_startable()) {
        clear(c, kCapBpf, false);
        if (!set(c)) return std::string("capset: ") + std::strerror(errno) + ": CAP_BPF kept";
        return {};
    }
    c.data[kCapBpf / 32].effective |= 1u << (kCapBpf % 32);
    (void)set(c);
    return "CAP_BPF kept: starting a BPF iterator needs it on this kernel (before Linux 5.19, with "
           "kernel.unprivileged_bpf_disabled set)";
}

}  // namespace pidnsd
