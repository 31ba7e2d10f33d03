// libpidns-client: the typed calls over the generated proxy, and D-Bus errors as client::Error.
#include "client.h"

#include <utility>

namespace pidns::client {
namespace {

namespace key = bus::key;

// Runs a call of the generated proxy; sdbus::Error becomes client::Error.
template <class F>
auto call(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const sdbus::Error& e) {
        throw Error(e.getName(), e.getMessage());
    }
}

StatValue stat_value(const sdbus::Variant& v) {
    const std::string t = v.peekValueType();
    if (t == "t") return v.get<std::uint64_t>();
    if (t == "x") return v.get<std::int64_t>();
    if (t == "u") return v.get<std::uint32_t>();
    if (t == "i") return v.get<std::int32_t>();
    if (t == "b") return v.get<bool>();
    if (t == "d") return v.get<double>();
    if (t == "s") return v.get<std::string>();
    return std::string("(value of D-Bus type " + t + ")");
}

using Description = std::map<std::string, sdbus::Variant>;

// Each element of an answer's array as the library's type.
template <class Wire, class F>
auto convert_all(const std::vector<Wire>& wire, F&& convert) {
    std::vector<decltype(convert(wire.front()))> out;
    out.reserve(wire.size());
    for (const auto& w : wire) out.push_back(convert(w));
    return out;
}

template <class T>
T value_or(const Description& d, const char* key, T dflt) {
    auto it = d.find(key);
    if (it == d.end()) return dflt;
    try {
        return it->second.get<T>();
    } catch (const sdbus::Error&) {
        return dflt;  // another type than documented: left out rather than misread
    }
}

Labels labels_of(const Description& d) {
    Labels l;
    l.command = value_or<std::string>(d, key::kCommand, "");
    l.uid = value_or<std::uint32_t>(d, key::kUid, kNoUid);
    l.user = value_or<std::string>(d, key::kUser, "");
    l.cgroup = value_or<std::string>(d, key::kCGroup, "");
    l.unit = value_or<std::string>(d, key::kUnit, "");
    l.slice = value_or<std::string>(d, key::kSlice, "");
    l.container_engine = value_or<std::string>(d, key::kContainerEngine, "");
    l.container_id = value_or<std::string>(d, key::kContainerId, "");
    l.container_name = value_or<std::string>(d, key::kContainerName, "");
    l.pod_uid = value_or<std::string>(d, key::kPodUid, "");
    l.pod_id = value_or<std::string>(d, key::kPodId, "");
    l.pod_name = value_or<std::string>(d, key::kPodName, "");
    l.pod_namespace = value_or<std::string>(d, key::kPodNamespace, "");
    l.machine = value_or<std::string>(d, key::kMachine, "");
    l.unit_owner_uid = value_or<std::uint32_t>(d, key::kUnitOwnerUid, kNoUid);
    l.container_owner_uid = value_or<std::uint32_t>(d, key::kContainerOwnerUid, kNoUid);
    return l;
}

NamespaceDescription namespace_description(const Description& d) {
    NamespaceDescription n;
    n.ns.id = value_or<std::uint64_t>(d, key::kId, 0);
    n.ns.inode = value_or<std::uint64_t>(d, key::kInode, 0);
    n.ns.type = value_or<std::string>(d, key::kType, "");
    n.ns.parent = value_or<std::uint64_t>(d, key::kParent, 0);
    n.ns.owner = value_or<std::uint64_t>(d, key::kOwner, 0);
    n.ns.level = value_or<std::uint32_t>(d, key::kLevel, 0);
    n.ns.init_pid = value_or<std::uint32_t>(d, key::kInitPid, 0);
    n.ns.nprocs = value_or<std::uint32_t>(d, key::kProcesses, 0);
    n.ns.owner_uid = value_or<std::uint32_t>(d, key::kOwnerUid, 0);
    n.representative_pid = value_or<std::uint32_t>(d, key::kRepresentativePid, 0);
    n.labels = labels_of(d);
    n.netns_names = value_or<std::vector<std::string>>(d, key::kNetnsNames, {});
    for (const auto& h : value_or<std::vector<bus::WireHolder>>(d, key::kHolders, {}))
        n.holders.push_back(Holder{std::get<0>(h), std::get<1>(h)});
    n.holders_omitted = value_or<std::uint32_t>(d, key::kHoldersOmitted, 0);
    for (const auto& c :
         value_or<std::vector<bus::WireSharer>>(d, key::kContainerSharers, {}))
        n.sharers.push_back(ContainerRef{std::get<0>(c), std::get<1>(c), std::get<2>(c), std::get<3>(c)});
    return n;
}

}  // namespace

const char* to_string(NamespaceEvent::Kind kind) noexcept {
    switch (kind) {
    case NamespaceEvent::Kind::added: return "added";
    case NamespaceEvent::Kind::removed: return "removed";
    case NamespaceEvent::Kind::resync: return "resync";
    }
    return "?";
}

ErrorKind error_kind(std::string_view name) noexcept {
    if (name == bus::kErrorNoSuchNamespace) return ErrorKind::no_such_namespace;
    if (name == bus::kErrorNotPidNamespace) return ErrorKind::not_pid_namespace;
    if (name == bus::kErrorNoSuchProcess) return ErrorKind::no_such_process;
    if (name == bus::kErrorAmbiguousNamespace) return ErrorKind::ambiguous_namespace;
    if (name == bus::kErrorAccessDenied) return ErrorKind::access_denied;
    if (name == bus::kErrorInvalidArgs) return ErrorKind::invalid_args;
    if (name == bus::kErrorLimitsExceeded) return ErrorKind::limits_exceeded;
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
        name == "org.freedesktop.DBus.Error.NoReply" || name == "org.freedesktop.DBus.Error.Disconnected" ||
        name == "org.freedesktop.DBus.Error.NoServer" || name == "org.freedesktop.DBus.Error.FileNotFound" ||
        name == "org.freedesktop.DBus.Error.Timeout" || name == "org.sdbus.Error")
        return ErrorKind::unavailable;
    return ErrorKind::failed;
}

Error::Error(std::string name, std::string message)
    : std::runtime_error(message.empty() ? name : message),
      name_(std::move(name)),
      message_(std::move(message)),
      kind_(error_kind(name_)) {}

NamespaceInfo to_namespace_info(const WireNamespace& w) {
    return NamespaceInfo{std::get<0>(w), std::get<1>(w), std::get<2>(w), std::get<3>(w), std::get<4>(w),
                         std::get<5>(w), std::get<6>(w), std::get<7>(w), std::get<8>(w)};
}

std::string to_string(const StatValue& v) {
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) return x;
            else if constexpr (std::is_same_v<T, bool>) return x ? "yes" : "no";
            else return std::to_string(x);
        },
        v);
}

namespace detail {
ClientBase::ClientBase(ConnectOptions&& o) : on_event(std::move(o.on_event)) {
    try {
        conn = o.address.empty() ? sdbus::createSystemBusConnection()
                                 : sdbus::createSessionBusConnectionWithAddress(o.address);
    } catch (const sdbus::Error& e) {
        throw Error(e.getName(), "cannot connect to " + (o.address.empty() ? std::string("the system bus") : o.address) +
                                     ": " + e.getMessage());
    }
}
}  // namespace detail

Client::Client(ConnectOptions options) try
    : ClientBase(std::move(options)),
      ProxyInterfaces(*conn, bus::kServiceName, bus::kObjectPath),
      loop_thread_(options.event_loop_thread) {
    registerProxy();
    if (loop_thread_) conn->enterEventLoopAsync();
} catch (const sdbus::Error& e) {
    throw Error(e.getName(), e.getMessage());
}

Client::~Client() {
    unregisterProxy();
    if (loop_thread_) conn->leaveEventLoop();
}

std::uint32_t Client::translate_pid(std::uint32_t pid, std::uint64_t from, std::uint64_t to) {
    return call([&] { return TranslatePid(pid, from, to); });
}

std::vector<std::uint32_t> Client::translate_pids(const std::vector<std::uint32_t>& pids, std::uint64_t from,
                                                  std::uint64_t to) {
    return call([&] { return TranslatePids(pids, from, to); });
}

std::vector<NamespaceInfo> Client::list_namespaces(const std::string& type) {
    return convert_all(call([&] { return ListNamespaces(type); }), to_namespace_info);
}

NamespaceInfo Client::get_namespace(std::uint64_t ns) {
    return to_namespace_info(call([&] { return GetNamespace(ns); }));
}

ProcessInfo Client::get_process(std::uint32_t pid) {
    auto [nspid, nstgid, nspgid, nssid, namespaces] = call([&] { return GetProcess(pid); });
    return ProcessInfo{pid, std::move(nspid), std::move(nstgid), std::move(nspgid), std::move(nssid),
                       std::move(namespaces)};
}

std::vector<std::uint32_t> Client::list_processes(std::uint64_t ns) {
    return call([&] { return ListProcesses(ns); });
}

NamespaceDescription Client::describe_namespace(std::uint64_t ns) {
    return namespace_description(call([&] { return DescribeNamespace(ns); }));
}

std::vector<NamespaceDescription> Client::describe_namespaces(const std::string& type) {
    return convert_all(call([&] { return DescribeNamespaces(type); }), namespace_description);
}

ProcessDescription Client::describe_process(std::uint32_t pid) {
    const auto d = call([&] { return DescribeProcess(pid); });
    ProcessDescription p;
    p.process.pid = pid;
    p.process.nspid = value_or<std::vector<std::uint32_t>>(d, key::kNSpid, {});
    p.process.nstgid = value_or<std::vector<std::uint32_t>>(d, key::kNStgid, {});
    p.process.nspgid = value_or<std::vector<std::uint32_t>>(d, key::kNSpgid, {});
    p.process.nssid = value_or<std::vector<std::uint32_t>>(d, key::kNSsid, {});
    p.process.namespaces = value_or<std::map<std::string, std::uint64_t>>(d, key::kNamespaces, {});
    p.threads = value_or<std::vector<std::uint32_t>>(d, key::kThreads, {});
    p.labels = labels_of(d);
    return p;
}

DumpEntry to_dump_entry(const WireDumpEntry& w) {
    return DumpEntry{std::get<0>(w), std::get<1>(w), std::get<2>(w), std::get<3>(w), std::get<4>(w),
                     std::get<5>(w), std::get<6>(w), std::get<7>(w), std::get<8>(w), std::get<9>(w)};
}

std::string dump_flags_text(std::uint32_t flags) {
    std::string s;
    for (auto [bit, name] : {std::pair{kDumpThread, "thread"}, std::pair{kDumpZombie, "zombie"},
                             std::pair{kDumpEnteredFromOutside, "entered-from-outside"},
                             std::pair{kDumpUnsharedPid, "unshared-pid"}})
        if (flags & bit) s += (s.empty() ? "" : ",") + std::string(name);
    return s;
}

std::vector<DumpEntry> Client::dump_pid_tree(std::uint64_t ns) {
    return convert_all(call([&] { return DumpPidTree(ns); }), to_dump_entry);
}

PidTreeDump Client::dump_pid_tree_with_sequence(std::uint64_t ns) {
    auto [sequence, wire] = call([&] { return DumpPidTreeWithSequence(ns); });
    PidTreeDump out;
    out.sequence = sequence;
    out.tasks = convert_all(wire, to_dump_entry);
    return out;
}

Statistics Client::statistics() {
    auto wire = call([&] { return GetStatistics(); });
    Statistics out;
    for (const auto& [k, v] : wire) out.emplace(k, stat_value(v));
    return out;
}

void Client::subscribe() { call([&] { Subscribe(); }); }
void Client::unsubscribe() { call([&] { Unsubscribe(); }); }
std::string Client::version() { return call([&] { return Version(); }); }
std::uint32_t Client::namespace_count() { return call([&] { return Namespaces(); }); }
std::uint32_t Client::process_count() { return call([&] { return Processes(); }); }
std::string Client::event_source() { return call([&] { return EventSource(); }); }
bool Client::kernel_namespace_ids() { return call([&] { return KernelNamespaceIds(); }); }

void Client::ping() {
    call([&] { getProxy().callMethod("Ping").onInterface(bus::kPeerInterface).storeResultsTo(); });
}

int Client::fd() const { return conn->getEventLoopPollData().fd; }

bool Client::process_pending() {
    return call([&] { return conn->processPendingRequest(); });
}

void Client::onNamespaceAdded(const std::uint64_t& id, const std::string& type) {
    if (on_event) on_event(NamespaceEvent{NamespaceEvent::Kind::added, id, type});
}

void Client::onNamespaceRemoved(const std::uint64_t& id, const std::string& type) {
    if (on_event) on_event(NamespaceEvent{NamespaceEvent::Kind::removed, id, type});
}

void Client::onResync() {
    if (on_event) on_event(NamespaceEvent{NamespaceEvent::Kind::resync, 0, {}});
}

}  // namespace pidns::client
