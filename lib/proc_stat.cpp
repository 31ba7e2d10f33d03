// Parser for /proc/PID/stat.
#include "proc_stat.h"

#include <limits>

#include "parse_util.h"

namespace pidns {

Result<ProcStat> parse_proc_stat(std::string_view text) {
    auto open = text.find('(');
    auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open)
        return make_error(Errc::parse, "/proc stat: no '(comm)' field");
    ProcStat st;
    auto head = split_ws(text.substr(0, open));
    auto pid = head.size() == 1 ? parse_i64(head[0]) : std::nullopt;
    if (!pid || *pid <= 0 || *pid > std::numeric_limits<std::int32_t>::max())
        return make_error(Errc::parse, "/proc stat: bad pid field");
    st.pid = static_cast<std::int32_t>(*pid);
    auto rest = text.substr(close + 1);
    while (!rest.empty() && (rest.back() == '\n')) rest.remove_suffix(1);
    auto f = split_ws(rest);
    // f[0] is field 3 (state), f[1] field 4 (ppid), f[6] field 9 (flags), f[17] field 20 (num_threads),
    // f[19] field 22 (starttime).
    if (f.size() < 20) return make_error(Errc::parse, "/proc stat: too few fields");
    if (f[0].size() != 1) return make_error(Errc::parse, "/proc stat: bad state field");
    st.state = f[0][0];
    auto ppid = parse_i64(f[1]);
    if (!ppid || *ppid < 0 || *ppid > std::numeric_limits<std::int32_t>::max())
        return make_error(Errc::parse, "/proc stat: bad ppid field");
    st.ppid = static_cast<std::int32_t>(*ppid);
    auto flags = parse_u64(f[6]);
    if (!flags || *flags > std::numeric_limits<std::uint32_t>::max()) return make_error(Errc::parse, "/proc stat: bad flags field");
    st.flags = static_cast<std::uint32_t>(*flags);
    if (auto n = parse_u64(f[17]); n && *n <= std::numeric_limits<std::uint32_t>::max())
        st.num_threads = static_cast<std::uint32_t>(*n);
    auto start = parse_u64(f[19]);
    if (!start) return make_error(Errc::parse, "/proc stat: bad starttime field");
    st.start_time = *start;
    return st;
}

}  // namespace pidns
