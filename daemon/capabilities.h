// What pidnsd gives up once its model is made: the capabilities only the BPF iterator's load
// needed (lib/nsfs_fd_iter.h). A loaded iterator runs without them; only starting a pass needs
// CAP_BPF on kernels before 5.19 when kernel.unprivileged_bpf_disabled is set.
#pragma once

#include <functional>
#include <string>

namespace pidnsd {

// Drops CAP_PERFMON and CAP_BPF from this thread's effective, permitted and inheritable sets
// (call it while pidnsd has this one thread: threads made later inherit them). With `iterator`,
// CAP_BPF is first dropped from the effective set alone and kept when `pass_startable` then
// fails. Without (no iterator loaded) both go. Returns, for the log, what was kept and why, or
// why nothing could be dropped; empty when both went (or were not held).
std::string drop_bpf_capabilities(bool iterator, const std::function<bool()>& pass_startable);

}  // namespace pidnsd
