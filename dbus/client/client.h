// libpidns-client: one connection to pidnsd (org.pidns.Manager1), typed answers with named fields,
// and D-Bus errors as pidns::client::Error. Used by pidnsctl, the D-Bus tests and the benchmarks.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wire.h"
#include "fast_arrays.h"  // before the proxy: whole-array au
#include "org.pidns.Manager1.proxy.h"

namespace pidns::client {

// One entry of ListNamespaces / GetNamespace (see the XML's doc annotations for each field).
struct NamespaceInfo {
    std::uint64_t id = 0;
    std::uint64_t inode = 0;
    std::string type;
    std::uint64_t parent = 0;  // id of the parent pid/user namespace, 0 if none or not visible
    std::uint64_t owner = 0;   // id of the owning user namespace, 0 if not visible
    std::uint32_t level = 0;
    std::uint32_t init_pid = 0;  // in the caller's pid namespace
    std::uint32_t nprocs = 0;
    std::uint32_t owner_uid = 0;
    bool operator==(const NamespaceInfo&) const = default;
};

// GetProcess: the chains as /proc/PID/status prints them to the caller (first: the caller's view,
// last: the task's own pid namespace) and the id of each of its namespaces by type name.
struct ProcessInfo {
    std::uint32_t pid = 0;  // as asked, in the caller's pid namespace
    std::vector<std::uint32_t> nspid, nstgid, nspgid, nssid;
    std::map<std::string, std::uint64_t> namespaces;
    bool operator==(const ProcessInfo&) const = default;
};

// What a process or namespace is known by (DescribeProcess, DescribeNamespace; see the XML for
// each key). Empty where pidnsd gave nothing; a uid is kNoUid then. The strings are as pidnsd
// sends them: escaped (the XML's rule, lib/escape.h), never raw bytes of a user's.
inline constexpr std::uint32_t kNoUid = bus::kNoUid;
struct Labels {
    std::string command;  // comm
    std::uint32_t uid = kNoUid;
    std::string user;
    std::string cgroup, unit, slice;
    std::string container_engine, container_id, container_name, pod_uid;
    std::string pod_id, pod_name, pod_namespace;  // podman's pod, or the Kubernetes pod (CRI sandbox)
    std::string machine;  // systemd-machined's name
    // Who could have named the cgroups unit/slice/machine and the container keys come from
    // (UnitOwnerUid, ContainerOwnerUid): kNoUid when only root could.
    std::uint32_t unit_owner_uid = kNoUid, container_owner_uid = kNoUid;
    bool operator==(const Labels&) const = default;
};

// A container other than the namespace's own with members in it (ContainerSharers).
struct ContainerRef {
    std::string engine, id, name;
    std::uint32_t owner_uid = kNoUid;  // who could have named its cgroup (as container_owner_uid)
    bool operator==(const ContainerRef&) const = default;
};

// What keeps a namespace alive: kind (process, task, fd, ancestor, mount) and, for an nsfs bind
// mount the caller may see, its mount point.
struct Holder {
    std::string kind, path;
    bool operator==(const Holder&) const = default;
};

// DescribeNamespace: GetNamespace's entry, its representative's labels, names and holders.
struct NamespaceDescription {
    NamespaceInfo ns;
    std::uint32_t representative_pid = 0;  // in the caller's pid namespace, 0: none
    Labels labels;
    std::vector<std::string> netns_names;
    std::vector<Holder> holders;
    std::uint32_t holders_omitted = 0;  // bind mounts beyond those listed in holders
    std::vector<ContainerRef> sharers;  // containers that joined it, besides its own
};

// DescribeProcess: GetProcess's answer, its threads (the caller's view, the leader first) and labels.
struct ProcessDescription {
    ProcessInfo process;
    std::vector<std::uint32_t> threads;
    Labels labels;
};

// One DumpPidTree entry (see the XML for each field): a task of the dumped pid namespace subtree.
struct DumpEntry {
    std::uint32_t rpid = 0;                  // in the caller's pid namespace
    std::uint32_t depth = 0;                 // levels below the dumped namespace
    std::vector<std::uint32_t> vpids;        // in the dumped namespace first, its own last (set_tid reversed)
    std::uint32_t vtgid = 0, vppid = 0, vpgid = 0, vsid = 0;  // in the dumped namespace, 0: outside
    std::uint64_t pidns = 0, pid_for_children = 0;
    std::uint32_t flags = 0;                 // DumpFlag bits
    bool operator==(const DumpEntry&) const = default;
};
// DumpEntry::flags.
enum DumpFlag : std::uint32_t { kDumpThread = 1, kDumpZombie = 2, kDumpEnteredFromOutside = 4, kDumpUnsharedPid = 8 };
// "thread,zombie" for flags 3; "" for 0.
std::string dump_flags_text(std::uint32_t flags);
// DumpPidTreeWithSequence: the dump and the index's event sequence it was read at (0 when the
// caller may not be told it).
struct PidTreeDump {
    std::uint64_t sequence = 0;
    std::vector<DumpEntry> tasks;
};

// GetStatistics: key -> value (s, t, b; other D-Bus basic types are kept as they come).
using StatValue = std::variant<std::uint64_t, std::int64_t, std::uint32_t, std::int32_t, bool, double, std::string>;
using Statistics = std::map<std::string, StatValue>;

// The signals of Subscribe.
struct NamespaceEvent {
    enum class Kind { added, removed, resync };
    Kind kind = Kind::resync;
    std::uint64_t id = 0;  // 0 for resync
    std::string type;      // "" for resync
};
const char* to_string(NamespaceEvent::Kind kind) noexcept;

// What a D-Bus error means to a client.
enum class ErrorKind {
    no_such_namespace,
    not_pid_namespace,
    no_such_process,
    ambiguous_namespace,
    access_denied,
    invalid_args,
    limits_exceeded,
    unavailable,  // no bus, pidnsd not on it, or the connection went away
    failed,       // anything else
};
ErrorKind error_kind(std::string_view dbus_name) noexcept;

// A refused or failed call: the D-Bus error name and pidnsd's whole message.
class Error : public std::runtime_error {
public:
    Error(std::string name, std::string message);
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }
    [[nodiscard]] ErrorKind kind() const noexcept { return kind_; }

private:
    std::string name_, message_;
    ErrorKind kind_;
};

// The wire form of a namespace entry, and its conversion.
using bus::WireNamespace;
NamespaceInfo to_namespace_info(const WireNamespace& w);
using bus::WireDumpEntry;
DumpEntry to_dump_entry(const WireDumpEntry& w);

struct ConnectOptions {
    std::string address;                // a D-Bus address; "" = the system bus
    bool event_loop_thread = false;     // run the connection's event loop on a thread of its own
    std::function<void(const NamespaceEvent&)> on_event;  // signals, on the thread that dispatches
};

namespace detail {
// Holds what must outlive the proxy (bases are destroyed after the classes derived from them).
struct ClientBase {
    explicit ClientBase(ConnectOptions&& o);
    std::unique_ptr<sdbus::IConnection> conn;
    std::function<void(const NamespaceEvent&)> on_event;
};
}  // namespace detail

// A proxy of pidnsd's object on a connection of its own. The typed methods (snake_case) throw
// pidns::client::Error; the generated methods (TranslatePid, ...) stay public for tests of the wire
// format and throw sdbus::Error. Signals reach on_event from the event-loop thread, if one was
// asked for, or from process_pending() in a loop of the caller's (poll on fd()).
class Client : private detail::ClientBase, public sdbus::ProxyInterfaces<org::pidns::Manager1_proxy> {
public:
    explicit Client(ConnectOptions options = {});
    explicit Client(const std::string& address) : Client(ConnectOptions{address, false, {}}) {}
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    std::uint32_t translate_pid(std::uint32_t pid, std::uint64_t from = 0, std::uint64_t to = 0);
    std::vector<std::uint32_t> translate_pids(const std::vector<std::uint32_t>& pids, std::uint64_t from = 0,
                                              std::uint64_t to = 0);
    std::vector<NamespaceInfo> list_namespaces(const std::string& type = "");
    NamespaceInfo get_namespace(std::uint64_t ns);
    ProcessInfo get_process(std::uint32_t pid);
    std::vector<std::uint32_t> list_processes(std::uint64_t ns);
    NamespaceDescription describe_namespace(std::uint64_t ns);
    std::vector<NamespaceDescription> describe_namespaces(const std::string& type = "");
    ProcessDescription describe_process(std::uint32_t pid);
    std::vector<DumpEntry> dump_pid_tree(std::uint64_t ns);
    PidTreeDump dump_pid_tree_with_sequence(std::uint64_t ns);
    Statistics statistics();
    void subscribe();
    void unsubscribe();
    std::string version();
    std::uint32_t namespace_count();
    std::uint32_t process_count();
    std::string event_source();
    bool kernel_namespace_ids();
    // org.freedesktop.DBus.Peer.Ping on pidnsd's object (a round trip that pidnsd answers in sd-bus).
    void ping();

    // For a loop of the caller's: poll fd() for POLLIN (and timeout_usec() as sd-bus asks), then
    // process_pending() until it returns false. Throws Error when the connection is gone.
    [[nodiscard]] int fd() const;
    bool process_pending();

    sdbus::IConnection& connection() noexcept { return *conn; }
    sdbus::IProxy& proxy() noexcept { return getProxy(); }

private:
    void onNamespaceAdded(const std::uint64_t& id, const std::string& type) override;
    void onNamespaceRemoved(const std::uint64_t& id, const std::string& type) override;
    void onResync() override;
    bool loop_thread_ = false;
};

// Text of a statistic's value ("yes"/"no" for booleans).
std::string to_string(const StatValue& v);

}  // namespace pidns::client
