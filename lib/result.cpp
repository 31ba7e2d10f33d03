// Names and formatting for the library's typed errors.
#include "result.h"

#include <cstring>

namespace pidns {

std::string_view errc_name(Errc e) noexcept {
    switch (e) {
    case Errc::not_found: return "not-found";
    case Errc::no_such_namespace: return "no-such-namespace";
    case Errc::not_pid_namespace: return "not-pid-namespace";
    case Errc::ambiguous: return "ambiguous";
    case Errc::invalid_argument: return "invalid-argument";
    case Errc::access_denied: return "access-denied";
    case Errc::unreadable: return "unreadable";
    case Errc::unidentified: return "unidentified";
    case Errc::changed: return "changed";
    case Errc::moved: return "moved";
    case Errc::parse: return "parse";
    case Errc::io: return "io";
    case Errc::unsupported: return "unsupported";
    case Errc::too_large: return "too-large";
    case Errc::unstable: return "unstable";
    }
    return "unknown";
}

std::string Error::describe() const {
    std::string s(errc_name(code));
    s += ": ";
    s += message;
    if (sys_errno != 0) {
        s += " (";
        s += std::strerror(sys_errno);
        s += ")";
    }
    return s;
}

Error make_error(Errc code, std::string message, int sys_errno) {
    return Error{code, std::move(message), sys_errno};
}

}  // namespace pidns
