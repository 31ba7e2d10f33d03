// org.pidns.Manager1 handlers: parse -> queue a call (method_call.h) that identifies the caller,
// runs its query (queries.h) through the caller's view, and replies (answers: describe.h).
#include "manager.h"

#include <memory>
#include <tuple>

#include "clients.h"
#include "describe.h"
#include "errors.h"
#include "escape.h"
#include "method_call.h"
#include "model.h"
#include "polkit.h"
#include "queries.h"
#include "signals.h"
#include "view.h"

#ifndef PIDNSD_VERSION
#define PIDNSD_VERSION "unknown"
#endif

namespace pidnsd {
namespace {

namespace stat = pidns::bus::stat;
namespace detail = pidns::bus::detail;

}  // namespace

Manager::Manager(sdbus::IConnection& conn, pidns::Model& model, Clients& clients, Polkit& polkit,
                 const std::string& event_source)
    : AdaptorInterfaces(conn, pidns::bus::kObjectPath),
      model_(model),
      clients_(clients),
      polkit_(polkit),
      event_source_(event_source) {
    property_call_watch_ = conn.addMatch(
        std::string("type='method_call',interface='") + pidns::bus::kPropertiesInterface + "',path='" +
            pidns::bus::kObjectPath + "'",
        [this](sdbus::Message& m) { property_sender_ = m.getSender(); });
    registerAdaptor();
}

Manager::~Manager() { unregisterAdaptor(); }

void Manager::queue(std::unique_ptr<Call> call) {
    const std::string from = sender();
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    const std::size_t bytes = 256 + call->holding().pids * sizeof(std::uint32_t);  // about the request's size
    auto refused = clients_.submit(from, std::move(call));
    if (!refused || msg == nullptr) return;
    DeferredError reply(*msg, *refused);
    if (refused->getName() == kErrorLimitsExceeded)
        clients_.refuse_later(from, std::move(reply), bytes);
    else
        reply.send();
}

std::string Manager::sender() const {
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    return msg != nullptr ? msg->getSender() : std::string();
}

void Manager::TranslatePid(sdbus::Result<uint32_t>&& result, uint32_t pid, uint64_t from, uint64_t to) {
    queue(make_call("TranslatePid", std::move(result),
                                        one_shot<uint32_t>([=](pidns::CallerView& v, Client&) {
                                            return std::make_tuple(unwrap(v.translate(pid, from, to)));
                                        }),
                                        CallEnv{model_, clients_, polkit_},
                                        {{detail::kFrom, std::to_string(from)}, {detail::kTo, std::to_string(to)}}, true));
}

void Manager::TranslatePids(sdbus::Result<std::vector<uint32_t>>&& result, std::vector<uint32_t> pids, uint64_t from,
                            uint64_t to) {
    if (auto s = pidns::check_batch(pids.size()); !s) {
        result.returnError(to_dbus_error(s.error()));
        return;
    }
    const std::size_t n = pids.size();
    queue(make_call("TranslatePids", std::move(result),
                                        std::unique_ptr<Work<std::vector<uint32_t>>>(
                                            std::make_unique<TranslateMany>(pidns::TranslateQuery(std::move(pids), from, to))),
                                        CallEnv{model_, clients_, polkit_},
                                        {{detail::kFrom, std::to_string(from)}, {detail::kTo, std::to_string(to)}}, false, n));
}

void Manager::ListNamespaces(sdbus::Result<std::vector<NamespaceTuple>>&& result, std::string type) {
    CallDetails details{{detail::kType, type}};
    auto call = make_call("ListNamespaces", std::move(result),
                          std::unique_ptr<Work<std::vector<NamespaceTuple>>>(std::make_unique<ListWork<NamespaceTuple>>(
                              std::move(type),
                              [](pidns::CallerView&, const pidns::NamespaceEntry& e, pidns::Result<pidns::Labels>*) {
                                  return to_tuple(e);
                              },
                              true)),
                          CallEnv{model_, clients_, polkit_}, std::move(details));
    call->holds_signals = true;
    queue(std::move(call));
}

void Manager::GetNamespace(sdbus::Result<NamespaceTuple>&& result, uint64_t ns) {
    queue(make_call("GetNamespace", std::move(result),
                    std::unique_ptr<Work<NamespaceTuple>>(std::make_unique<OneWork<NamespaceTuple>>(
                        ns, [](pidns::CallerView&, const pidns::NamespaceEntry& e) { return to_tuple(e); })),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

void Manager::GetProcess(sdbus::Result<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                                       std::vector<uint32_t>, std::map<std::string, uint64_t>>&& result,
                         uint32_t pid) {
    using R = std::tuple<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                         std::map<std::string, uint64_t>>;
    auto work = one_shot<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                         std::map<std::string, uint64_t>>([pid](pidns::CallerView& v, Client&) -> R {
        auto e = unwrap(v.get_process(pid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), e.ns[pidns::ns_type_index(t)]);
        return {std::move(e.nspid), std::move(e.nstgid), std::move(e.nspgid), std::move(e.nssid), std::move(ns)};
    });
    queue(make_call("GetProcess", std::move(result), std::move(work),
                                        CallEnv{model_, clients_, polkit_}, {}, true));
}

void Manager::ListProcesses(sdbus::Result<std::vector<uint32_t>>&& result, uint64_t ns) {
    queue(make_call("ListProcesses", std::move(result),
                                        std::unique_ptr<Work<std::vector<uint32_t>>>(std::make_unique<ListProcessesWork>(pidns::ProcessListQuery(ns))),
                                        CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

Manager::Description Manager::describe(pidns::CallerView& v, const pidns::NamespaceEntry& e,
                                       pidns::Result<pidns::Labels>* labels, pidns::TextBudget& budget) {
    return describe_entry(v, users_, machines_, engines_, model_, e, labels, budget);
}

void Manager::DescribeNamespace(sdbus::Result<Description>&& result, uint64_t ns) {
    queue(make_call("DescribeNamespace", std::move(result),
                    std::unique_ptr<Work<Description>>(std::make_unique<OneWork<Description>>(
                        ns, [this](pidns::CallerView& v, const pidns::NamespaceEntry& e) {
                            pidns::TextBudget budget;
                            return describe(v, e, nullptr, budget);
                        })),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}));
}

void Manager::DescribeNamespaces(sdbus::Result<std::vector<Description>>&& result, std::string type) {
    CallDetails details{{detail::kType, type}};
    auto budget = std::make_shared<pidns::TextBudget>();  // the whole reply's
    auto call = make_call("DescribeNamespaces", std::move(result),
                          std::unique_ptr<Work<std::vector<Description>>>(std::make_unique<ListWork<Description>>(
                              std::move(type),
                              [this, budget](pidns::CallerView& v, const pidns::NamespaceEntry& e,
                                             pidns::Result<pidns::Labels>* labels) { return describe(v, e, labels, *budget); },
                              false, &model_)),
                          CallEnv{model_, clients_, polkit_}, std::move(details));
    call->holds_signals = true;
    queue(std::move(call));
}

void Manager::DescribeProcess(sdbus::Result<Description>&& result, uint32_t pid) {
    auto work = one_shot<Description>([this, pid](pidns::CallerView& v, Client&) {
        auto p = unwrap(v.describe_process(pid));
        return std::make_tuple(describe_process(v, users_, machines_, engines_, pid, p));
    });
    queue(make_call("DescribeProcess", std::move(result), std::move(work), CallEnv{model_, clients_, polkit_}, {}, true));
}

void Manager::DumpPidTree(sdbus::Result<std::vector<DumpTuple>>&& result, uint64_t ns) {
    queue(make_call("DumpPidTree", std::move(result),
                    std::unique_ptr<Work<std::vector<DumpTuple>>>(
                        std::make_unique<DumpWork>(DumpTree(model_, ns, event_sequence_))),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}, false, 0, true));
}

void Manager::DumpPidTreeWithSequence(sdbus::Result<uint64_t, std::vector<DumpTuple>>&& result, uint64_t ns) {
    // The same operation to polkit rules (details method=DumpPidTree), and in the log.
    queue(make_call("DumpPidTree", std::move(result),
                    std::unique_ptr<Work<uint64_t, std::vector<DumpTuple>>>(
                        std::make_unique<DumpSequenceWork>(DumpTree(model_, ns, event_sequence_))),
                    CallEnv{model_, clients_, polkit_}, {{detail::kNamespace, std::to_string(ns)}}, false, 0, true));
}

void Manager::GetStatistics(sdbus::Result<std::map<std::string, sdbus::Variant>>&& result) {
    queue(make_call("GetStatistics", std::move(result),
                              one_shot<std::map<std::string, sdbus::Variant>>([this](pidns::CallerView& v, Client& c) {
                                  // Counters about everyone's activity only for those who may inspect everything.
                                  auto stats = statistics_ ? statistics_(v.inspects_everything()) : Statistics{};
                                  stats[stat::kCallerCalls] = sdbus::Variant(static_cast<std::uint64_t>(c.calls_total));
                                  stats[stat::kCallerLimitsExceeded] = sdbus::Variant(static_cast<std::uint64_t>(c.calls_limited));
                                  stats[stat::kCallerSubscribed] = sdbus::Variant(c.subscribed);
                                  // Whom its calls are charged to (pidnsd(8), SECURITY: the principal rule).
                                  stats[stat::kCallerPrincipal] = sdbus::Variant(c.principal.uid);
                                  stats[stat::kCallerPrivileged] = sdbus::Variant(c.principal.privileged);
                                  return std::make_tuple(std::move(stats));
                              }),
                              CallEnv{model_, clients_, polkit_}));
}

void Manager::Subscribe(sdbus::Result<>&& result) {
    queue(make_call("Subscribe", std::move(result), one_shot<>([this](pidns::CallerView&, Client& c) {
                                            clients_.subscribe(c);
                                            return std::tuple<>();
                                        }),
                                        CallEnv{model_, clients_, polkit_}));
}

void Manager::Unsubscribe(sdbus::Result<>&& result) {
    queue(make_call("Unsubscribe", std::move(result), one_shot<>([this](pidns::CallerView&, Client& c) {
                                            clients_.unsubscribe(c);
                                            return std::tuple<>();
                                        }),
                                        CallEnv{model_, clients_, polkit_}));
}

std::string Manager::Version() { return PIDNSD_VERSION; }

template <class F>
uint32_t Manager::count_for_property(const char* what, F&& count) {
    return guarded(what, [&] {
        const pidns::Caller caller = clients_.caller_for_property(property_sender_);
        const auto t0 = Clock::now();
        pidns::CallerView view(model_, caller);
        view.use_remembered_credentials();  // a property must answer at once: no /proc read per process
        const uint32_t n = count(view);
        clients_.charge_property(property_sender_, Clock::now() - t0);
        return n;
    });
}

uint32_t Manager::Namespaces() {
    return count_for_property("Namespaces", [](pidns::CallerView& v) { return v.namespace_count(); });
}

uint32_t Manager::Processes() {
    return count_for_property("Processes", [](pidns::CallerView& v) { return v.process_count(); });
}

std::string Manager::EventSource() { return event_source_; }

bool Manager::KernelNamespaceIds() { return model_.features().ns_get_id; }

void Manager::send_signal(const std::string& destination, const char* member, std::uint64_t id, pidns::NsType type) {
    auto signal = getObject().createSignal(INTERFACE_NAME, member);
    if (std::string_view(member) != pidns::bus::kSignalResync) signal << id << std::string(pidns::ns_type_name(type));
    signal.setDestination(destination);
    getObject().emitSignal(signal);
}

}  // namespace pidnsd
