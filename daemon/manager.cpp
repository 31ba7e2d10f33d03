// org.pidns.Manager1 handlers: parse -> identify the caller -> model (through its view) -> reply.
#include "manager.h"

#include "callers.h"
#include "polkit.h"
#include "errors.h"
#include "model.h"
#include "view.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <tuple>

#ifndef PIDNSD_VERSION
#define PIDNSD_VERSION "unknown"
#endif

namespace pidnsd {
namespace {

Manager::NamespaceTuple to_tuple(const pidns::NamespaceEntry& e) {
    return {e.id, e.inode, std::string(pidns::ns_type_name(e.type)), e.parent, e.owner,
            e.level, e.init_pid, e.nprocs, e.owner_uid};
}

}  // namespace

Manager::Manager(sdbus::IConnection& conn, pidns::Model& model, CallerRegistry& callers, Polkit& polkit,
                 const std::string& event_source)
    : AdaptorInterfaces(conn, kObjectPath),
      model_(model),
      callers_(callers),
      polkit_(polkit),
      event_source_(event_source) {
    property_call_watch_ = conn.addMatch(
        std::string("type='method_call',interface='org.freedesktop.DBus.Properties',path='") + kObjectPath + "'",
        [this](sdbus::Message& m) {
            property_sender_ = m.getSender();
            // Reading a property makes the client known, so it gets the signals it may see.
            try {
                (void)callers_.caller_of(property_sender_);
            } catch (const std::exception& e) {
                spdlog::debug("property call from {}: {}", property_sender_, e.what());
            }
        });
    registerAdaptor();
}

Manager::~Manager() { unregisterAdaptor(); }

template <class F>
auto Manager::with_view_of(const char* what, const std::string& sender, F&& body) {
    return guarded(what, [&] {
        const pidns::Caller caller = callers_.caller_of(sender);
        current_sender_ = sender;
        pidns::CallerView view(model_, caller);
        return body(view);
    });
}

template <class... R, class F>
void Manager::answer(const char* method, sdbus::Result<R...>&& result, F compute) {
    auto res = std::make_shared<sdbus::Result<R...>>(std::move(result));
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    const std::string sender = msg != nullptr ? msg->getSender() : std::string();
    struct Outcome {
        std::optional<std::tuple<R...>> value;
        std::optional<sdbus::Error> error;
        bool denied = false;  // the kernel's rule refused something the caller asked about
    };
    auto run = [this, method, sender, compute](bool widened) {
        Outcome o;
        try {
            guarded(method, [&] {
                const pidns::Caller caller = callers_.caller_of(sender);
                current_sender_ = sender;
                pidns::CallerView view(model_, caller);
                if (widened) view.widen();
                try {
                    o.value = compute(view);
                } catch (...) {
                    o.denied = view.denied_any();
                    throw;
                }
                o.denied = view.denied_any();
            });
        } catch (const sdbus::Error& e) {
            o.error = e;
        }
        return o;
    };
    auto reply = [res](const Outcome& o) {
        try {
            if (o.error)
                res->returnError(*o.error);
            else
                std::apply([&](const auto&... v) { res->returnResults(v...); }, *o.value);
        } catch (const std::exception& e) {
            spdlog::warn("could not send a reply: {}", e.what());
        }
    };
    Outcome first = run(false);
    if (!first.denied || !polkit_.enabled()) {
        reply(first);
        return;
    }
    polkit_.check(sender, [run, reply, first](bool authorized) {
        reply(authorized ? run(true) : first);
    });
}

void Manager::TranslatePid(sdbus::Result<uint32_t>&& result, uint32_t pid, uint64_t from, uint64_t to) {
    answer("TranslatePid", std::move(result),
           [=](pidns::CallerView& v) { return std::make_tuple(unwrap(v.translate(pid, from, to))); });
}

void Manager::TranslatePids(sdbus::Result<std::vector<uint32_t>>&& result, std::vector<uint32_t> pids, uint64_t from,
                            uint64_t to) {
    answer("TranslatePids", std::move(result), [pids = std::move(pids), from, to](pidns::CallerView& v) {
        return std::make_tuple(unwrap(v.translate_many(pids, from, to)));
    });
}

void Manager::ListNamespaces(sdbus::Result<std::vector<NamespaceTuple>>&& result, std::string type) {
    answer("ListNamespaces", std::move(result), [this, type = std::move(type)](pidns::CallerView& v) {
        auto entries = unwrap(v.list_namespaces(type));
        std::vector<NamespaceTuple> out;
        out.reserve(entries.size());
        for (const auto& e : entries) {
            out.push_back(to_tuple(e));
            callers_.mark_told(current_sender_, e.id);
        }
        return std::make_tuple(std::move(out));
    });
}

void Manager::GetNamespace(sdbus::Result<NamespaceTuple>&& result, uint64_t ns) {
    answer("GetNamespace", std::move(result), [this, ns](pidns::CallerView& v) {
        auto e = unwrap(v.get_namespace(ns));
        callers_.mark_told(current_sender_, e.id);
        return std::make_tuple(to_tuple(e));
    });
}

void Manager::GetProcess(sdbus::Result<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
                                       std::vector<uint32_t>, std::map<std::string, uint64_t>>&& result,
                         uint32_t pid) {
    answer("GetProcess", std::move(result), [pid](pidns::CallerView& v) {
        auto e = unwrap(v.get_process(pid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), e.ns[pidns::ns_type_index(t)]);
        return std::make_tuple(std::move(e.nspid), std::move(e.nstgid), std::move(e.nspgid), std::move(e.nssid),
                               std::move(ns));
    });
}

void Manager::ListProcesses(sdbus::Result<std::vector<uint32_t>>&& result, uint64_t ns) {
    answer("ListProcesses", std::move(result),
           [ns](pidns::CallerView& v) { return std::make_tuple(unwrap(v.list_processes(ns))); });
}

std::string Manager::Version() { return PIDNSD_VERSION; }

uint32_t Manager::Namespaces() {
    return with_view_of("Namespaces", property_sender_, [&](pidns::CallerView& v) { return v.namespace_count(); });
}

uint32_t Manager::Processes() {
    return with_view_of("Processes", property_sender_, [&](pidns::CallerView& v) { return v.process_count(); });
}

std::map<std::string, sdbus::Variant> Manager::GetStatistics() {
    return guarded("GetStatistics", [&] { return statistics_ ? statistics_() : Statistics{}; });
}

std::string Manager::EventSource() { return event_source_; }

bool Manager::KernelNamespaceIds() { return model_.features().ns_get_id; }

void Manager::emit_changes(const std::vector<pidns::NsChange>& changes, const std::vector<std::int32_t>& touched) {
    // Unicast, never broadcast: NamespaceAdded to each known client that can see the namespace,
    // NamespaceRemoved to each that was told of it. A client becomes known by calling a method or
    // reading a property.
    auto send = [&](const char* member, const std::string& to, const pidns::NsChange& c) {
        auto signal = getObject().createSignal(INTERFACE_NAME, member);
        signal << static_cast<uint64_t>(c.id) << std::string(pidns::ns_type_name(c.type));
        signal.setDestination(to);
        getObject().emitSignal(signal);
    };
    // The index does not change while signals go out: one view per client for the whole batch.
    callers_.for_each([&](const std::string& sender, CallerRegistry::Known& known) {
        pidns::CallerView view(model_, known.caller);
        for (const auto& c : changes) {
            if (c.added) {
                if (!view.can_see(c.id)) continue;
                known.told.insert(c.id);
                send("NamespaceAdded", sender, c);
            } else if (known.told.erase(c.id) > 0) {
                send("NamespaceRemoved", sender, c);
            }
        }
        // A namespace can become visible after it was added: a process the caller may inspect
        // joins it, or credentials read mid-change (setuid then unshare) are corrected later.
        for (auto tgid : touched) {
            const auto* p = model_.index().find_process(tgid);
            if (p == nullptr) continue;
            bool fresh = false;
            for (auto id : p->ns) fresh = fresh || (id != 0 && !known.told.count(id));
            if (!fresh || !view.may_inspect(*p)) continue;
            for (auto id : p->ns) {
                if (id == 0 || known.told.count(id) || !view.can_see(id)) continue;
                known.told.insert(id);
                send("NamespaceAdded", sender, pidns::NsChange{id, model_.index().find_namespace(id)->meta.type, true});
            }
        }
    });
}

}  // namespace pidnsd
