// Whether polkit could say yes to org.pidns.inspect at all: a rules file naming it, or a default that grants it to the caller (no bus; unit-tested).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire.h"

namespace pidnsd {

// An <allow_*> value of a polkit action.
enum class Implicit : std::uint8_t { no, yes, auth_self, auth_admin, auth_self_keep, auth_admin_keep };
std::optional<Implicit> parse_implicit(std::string_view text);

struct ActionDefaults {
    Implicit any = Implicit::no, inactive = Implicit::no, active = Implicit::no;
};
// The <defaults> of action `id` in a polkit .policy file; nullopt when the file has no such action.
std::optional<ActionDefaults> parse_action_defaults(std::string_view xml, std::string_view id);

// The caller's login session, as polkit judges it (logind): none or remote (allow_any), local
// but not active (allow_inactive), local and active (allow_active). Local: the session has a seat.
enum class Session : std::uint8_t { none, inactive, active };

// Whether a default can grant `action` to a caller of `session` without asking it anything:
// "yes", or a "_keep" answer (an authorization kept from an earlier interactive check, which
// pidnsd's non-interactive queries see). auth_self and auth_admin need a dialog pidnsd never asks for.
bool default_may_grant(const ActionDefaults& d, Session session);

// What is on disk: the rules directories and the action file, read at start, on SIGHUP (reload)
// and again when one of them changed (refresh: their mtimes, looked at every kRecheck at most).
class PolkitRules {
public:
    static constexpr auto kRecheck = std::chrono::seconds(5);
    // polkitd 122's rules directories and the file dbus/org.pidns.policy is installed as.
    PolkitRules(std::vector<std::string> rules_dirs = {"/etc/polkit-1/rules.d", "/usr/share/polkit-1/rules.d"},
                std::string action_file = "/usr/share/polkit-1/actions/org.pidns.policy",
                std::string action = pidns::bus::kInspectAction);

    void reload();
    void refresh(std::chrono::steady_clock::time_point now);
    // Whether asking polkit about a caller of `session` could change its answer from "no".
    [[nodiscard]] bool may_grant(Session session) const;
    [[nodiscard]] bool rules_name_action() const noexcept { return rules_name_action_; }
    [[nodiscard]] const std::optional<ActionDefaults>& defaults() const noexcept { return defaults_; }
    [[nodiscard]] const std::vector<std::string>& rule_files() const noexcept { return naming_; }

private:
    // What the directories and the file looked like (names, sizes, mtimes): a change means reload.
    [[nodiscard]] std::string fingerprint() const;

    std::vector<std::string> dirs_;
    std::string action_file_, action_;
    bool rules_name_action_ = false;
    std::optional<ActionDefaults> defaults_;
    std::vector<std::string> naming_;  // the rules files that name the action
    std::string fingerprint_;
    std::chrono::steady_clock::time_point checked_{};
};

}  // namespace pidnsd
