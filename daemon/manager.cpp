// org.pidns.Manager1 handlers: parse -> identify the caller -> model (through its view) -> reply.
#include "manager.h"

#include "callers.h"
#include "errors.h"
#include "model.h"
#include "view.h"

#include <spdlog/spdlog.h>

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

Manager::Manager(sdbus::IConnection& conn, pidns::Model& model, CallerRegistry& callers,
                 const std::string& event_source)
    : AdaptorInterfaces(conn, kObjectPath), model_(model), callers_(callers), event_source_(event_source) {
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

template <class F>
auto Manager::with_view(const char* method, F&& body) {
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    if (msg == nullptr) throw sdbus::Error(kErrorFailed, std::string(method) + ": no message in progress");
    return with_view_of(method, msg->getSender(), std::forward<F>(body));
}

uint32_t Manager::TranslatePid(const uint32_t& pid, const uint64_t& from, const uint64_t& to) {
    return with_view("TranslatePid", [&](pidns::CallerView& v) { return unwrap(v.translate(pid, from, to)); });
}

std::vector<uint32_t> Manager::TranslatePids(const std::vector<uint32_t>& pids, const uint64_t& from,
                                             const uint64_t& to) {
    return with_view("TranslatePids", [&](pidns::CallerView& v) { return unwrap(v.translate_many(pids, from, to)); });
}

std::vector<Manager::NamespaceTuple> Manager::ListNamespaces(const std::string& type) {
    return with_view("ListNamespaces", [&](pidns::CallerView& v) {
        auto entries = unwrap(v.list_namespaces(type));
        std::vector<NamespaceTuple> out;
        out.reserve(entries.size());
        for (const auto& e : entries) {
            out.push_back(to_tuple(e));
            callers_.mark_told(current_sender_, e.id);
        }
        return out;
    });
}

Manager::NamespaceTuple Manager::GetNamespace(const uint64_t& ns) {
    return with_view("GetNamespace", [&](pidns::CallerView& v) {
        auto e = unwrap(v.get_namespace(ns));
        callers_.mark_told(current_sender_, e.id);
        return to_tuple(e);
    });
}

std::tuple<std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>, std::vector<uint32_t>,
           std::map<std::string, uint64_t>>
Manager::GetProcess(const uint32_t& pid) {
    return with_view("GetProcess", [&](pidns::CallerView& v) {
        auto e = unwrap(v.get_process(pid));
        std::map<std::string, uint64_t> ns;
        for (auto t : pidns::kAllNsTypes) ns.emplace(pidns::ns_type_name(t), e.ns[pidns::ns_type_index(t)]);
        return std::make_tuple(std::move(e.nspid), std::move(e.nstgid), std::move(e.nspgid), std::move(e.nssid),
                               std::move(ns));
    });
}

std::vector<uint32_t> Manager::ListProcesses(const uint64_t& ns) {
    return with_view("ListProcesses", [&](pidns::CallerView& v) { return unwrap(v.list_processes(ns)); });
}

std::string Manager::Version() { return PIDNSD_VERSION; }

uint32_t Manager::Namespaces() {
    return with_view_of("Namespaces", property_sender_, [&](pidns::CallerView& v) { return v.namespace_count(); });
}

uint32_t Manager::Processes() {
    return with_view_of("Processes", property_sender_, [&](pidns::CallerView& v) { return v.process_count(); });
}

std::string Manager::EventSource() { return event_source_; }

bool Manager::KernelNamespaceIds() { return model_.features().ns_get_id; }

void Manager::emit_changes(const std::vector<pidns::NsChange>& changes) {
    // Unicast, never broadcast: NamespaceAdded to each known client that can see the namespace,
    // NamespaceRemoved to each that was told of it. A client becomes known by calling a method or
    // reading a property.
    auto send = [&](const char* member, const std::string& to, const pidns::NsChange& c) {
        auto signal = getObject().createSignal(INTERFACE_NAME, member);
        signal << static_cast<uint64_t>(c.id) << std::string(pidns::ns_type_name(c.type));
        signal.setDestination(to);
        getObject().emitSignal(signal);
    };
    for (const auto& c : changes) {
        callers_.for_each([&](const std::string& sender, CallerRegistry::Known& known) {
            if (c.added) {
                pidns::CallerView view(model_, known.caller);
                if (!view.can_see(c.id)) return;
                known.told.insert(c.id);
                send("NamespaceAdded", sender, c);
            } else if (known.told.erase(c.id) > 0) {
                send("NamespaceRemoved", sender, c);
            }
        });
    }
}

}  // namespace pidnsd
