// pidnsctl's errors in its own words: what the user typed, which pidnsctl command helps, and the
// exit code pidnsctl(1) gives each class of error. pidnsd's own message and D-Bus error name are
// kept for --verbose.
#pragma once

#include <stdexcept>
#include <string>

#include "client.h"

namespace pidnsctl {

// Exit codes (pidnsctl(1), EXIT STATUS).
enum Exit : int { kOk = 0, kFailure = 1, kUsage = 2, kAmbiguous = 3, kNotFound = 4, kAccessDenied = 5 };

// A failure with its exit code, in pidnsctl's words; for one that came from the bus, the D-Bus
// error name and pidnsd's message as they were.
class CtlError : public std::runtime_error {
public:
    CtlError(int exit_code, const std::string& what, std::string dbus_name = {}, std::string dbus_message = {})
        : std::runtime_error(what), code_(exit_code), dbus_name_(std::move(dbus_name)),
          dbus_message_(std::move(dbus_message)) {}
    [[nodiscard]] int code() const noexcept { return code_; }
    [[nodiscard]] const std::string& dbus_name() const noexcept { return dbus_name_; }
    [[nodiscard]] const std::string& dbus_message() const noexcept { return dbus_message_; }

private:
    int code_;
    std::string dbus_name_, dbus_message_;
};

// The bus pidnsctl talks to, for messages: "" for the system bus (DBUS_SYSTEM_BUS_ADDRESS or its
// socket), else the --address given. Set once by main.
void set_bus_address(const std::string& address);

// What a call asks about, in the user's words: `subject` is a noun phrase ("process 4242 in your
// pid namespace", "pid namespace @4120"), `lister` the pidnsctl command that shows what there is
// to ask about ("pidnsctl ps @4120"; "" for the usual one of the error).
struct Asking {
    std::string subject;
    std::string lister;
};

// pidnsd's error `e` (or the bus's) in pidnsctl's words, with its exit code.
CtlError in_cli_words(const pidns::client::Error& e, const Asking& a = {});

// The bus could not be reached at all (`e` from connecting to it).
CtlError cannot_connect(const pidns::client::Error& e);

// f(), with pidnsd's errors in pidnsctl's words.
template <class F>
auto asking(const Asking& a, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const pidns::client::Error& e) {
        throw in_cli_words(e, a);
    }
}

}  // namespace pidnsctl
