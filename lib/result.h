// Typed errors and a small expected-like Result<T> that callers must inspect.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace pidns {

// Every failure the library reports falls in one of these classes, one reason each. Front ends
// (the D-Bus service, the demo) map them to their own vocabulary in one place (pidnsd:
// daemon/errors.cpp); the library's messages say what happened in the kernel's and the
// model's terms, never a front end's.
enum class Errc : std::uint8_t {
    not_found,          // no such process or task: never there, or it exited (while being read, too)
    no_such_namespace,  // unknown namespace id or inode
    not_pid_namespace,  // a namespace was named where a pid namespace is needed
    ambiguous,          // a reference names one namespace as id and another as inode
    invalid_argument,   // malformed request (pid 0, unknown type, too many pids, ...)
    access_denied,      // the kernel's rule refuses the caller this task (or a path was refused for safety)
    unreadable,         // the kernel shows this task's namespaces to no one: nobody may inspect it
    unidentified,       // the calling process could not be identified (exited, reused pid, changed uid)
    changed,            // a namespace changed while it was read (the task moved, or the inode was reused)
    moved,              // the process changed its user namespace since it was read: read it again
    parse,              // malformed /proc or netlink content
    io,                 // a system call failed for another reason
    unsupported,        // the running kernel lacks the feature
    too_large,          // the request would take more work or memory than one request may
    unstable,           // what was read kept changing while it was read; try again, or hold it still
};

// A task that is not there, or not as it was when looked up: read again or treat it as absent.
constexpr bool is_gone(Errc e) noexcept { return e == Errc::not_found || e == Errc::changed; }

std::string_view errc_name(Errc e) noexcept;

struct Error {
    Errc code;
    std::string message;  // human-readable, says what to do next where possible
    int sys_errno = 0;    // errno of the failing call, 0 if none

    [[nodiscard]] std::string describe() const;
};

Error make_error(Errc code, std::string message, int sys_errno = 0);

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
    Result(Error err) : v_(std::move(err)) {}           // NOLINT: implicit by design

    [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace pidns
