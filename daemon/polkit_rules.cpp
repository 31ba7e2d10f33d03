// polkit's rules directories and pidnsd's action defaults, read from disk; whether polkit could grant anything.
#include "polkit_rules.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace pidnsd {
namespace {

constexpr std::size_t kMaxFile = 1 << 20;   // a rules or action file larger than this is not read whole
constexpr std::size_t kMaxFiles = 1024;     // per directory

// The file's content, at most kMaxFile bytes ("" if unreadable). These directories are root's
// (polkitd reads them as trusted code): no user controls what is opened.
std::string read_small(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return {};
    std::string out;
    char buf[65536];
    for (ssize_t n; out.size() < kMaxFile && (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

// The *.rules files of a directory, sorted (as polkitd orders them, across directories, by name).
std::vector<std::string> rules_files(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view name(e->d_name);
        if (name.size() > 6 && name.ends_with(".rules") && out.size() < kMaxFiles) out.push_back(dir + "/" + std::string(name));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::string stamp(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return path + " -\n";
    return path + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + "\n";
}

// The text between <tag> and </tag> in `xml` from `from` (nullopt if absent).
std::optional<std::string_view> element(std::string_view xml, std::string_view tag, std::size_t from = 0) {
    const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
    const auto a = xml.find(open, from);
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = xml.find(close, a + open.size());
    if (b == std::string_view::npos) return std::nullopt;
    return xml.substr(a + open.size(), b - a - open.size());
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool grants(Implicit i) { return i == Implicit::yes || i == Implicit::auth_self_keep || i == Implicit::auth_admin_keep; }

}  // namespace

std::optional<Implicit> parse_implicit(std::string_view text) {
    text = trim(text);
    if (text == "no") return Implicit::no;
    if (text == "yes") return Implicit::yes;
    if (text == "auth_self") return Implicit::auth_self;
    if (text == "auth_admin") return Implicit::auth_admin;
    if (text == "auth_self_keep") return Implicit::auth_self_keep;
    if (text == "auth_admin_keep") return Implicit::auth_admin_keep;
    return std::nullopt;
}

std::optional<ActionDefaults> parse_action_defaults(std::string_view xml, std::string_view id) {
    // <action id="ID"> ... <defaults> <allow_any>..</allow_any> ... </defaults> ... </action>
    for (const char q : {'"', '\''}) {
        const std::string key = std::string("id=") + q + std::string(id) + q;
        const auto at = xml.find(key);
        if (at == std::string_view::npos) continue;
        const auto end = xml.find("</action>", at);
        const std::string_view action = xml.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        ActionDefaults d;  // an absent <allow_*> is "no" to polkitd
        if (const auto defs = element(action, "defaults")) {
            if (auto v = element(*defs, "allow_any")) d.any = parse_implicit(*v).value_or(Implicit::no);
            if (auto v = element(*defs, "allow_inactive")) d.inactive = parse_implicit(*v).value_or(Implicit::no);
            if (auto v = element(*defs, "allow_active")) d.active = parse_implicit(*v).value_or(Implicit::no);
        }
        return d;
    }
    return std::nullopt;
}

bool default_may_grant(const ActionDefaults& d, Session session) {
    switch (session) {
    case Session::none: return grants(d.any);
    case Session::inactive: return grants(d.inactive);
    case Session::active: return grants(d.active);
    }
    return false;
}

PolkitRules::PolkitRules(std::vector<std::string> rules_dirs, std::string action_file, std::string action)
    : dirs_(std::move(rules_dirs)), action_file_(std::move(action_file)), action_(std::move(action)) {
    reload();
}

std::string PolkitRules::fingerprint() const {
    std::string f = stamp(action_file_);
    for (const auto& d : dirs_) {
        f += stamp(d);
        for (const auto& file : rules_files(d)) f += stamp(file);
    }
    return f;
}

void PolkitRules::reload() {
    checked_ = std::chrono::steady_clock::now();
    fingerprint_ = fingerprint();
    naming_.clear();
    // A rule names the action, or its vendor's prefix ("org.pidns."): a rule that grants every
    // action without naming any is not seen (pidnsd(8), SECURITY).
    const std::string vendor = action_.substr(0, action_.rfind('.') + 1);
    for (const auto& d : dirs_)
        for (const auto& file : rules_files(d))
            if (read_small(file).find(vendor) != std::string::npos) naming_.push_back(file);
    rules_name_action_ = !naming_.empty();
    const std::string xml = read_small(action_file_);
    defaults_ = parse_action_defaults(xml, action_);
    spdlog::info("polkit: {} rules file(s) name {}{}; its defaults {}", naming_.size(), action_,
                 naming_.empty() ? "" : " (" + naming_.front() + (naming_.size() > 1 ? ", ..." : "") + ")",
                 !defaults_                                             ? "are not installed (" + action_file_ + ")"
                 : default_may_grant(*defaults_, Session::active) ||
                         default_may_grant(*defaults_, Session::inactive) ||
                         default_may_grant(*defaults_, Session::none)
                     ? std::string("may grant it without a dialog to some sessions")
                     : std::string("grant it to nobody without a dialog"));
}

void PolkitRules::refresh(std::chrono::steady_clock::time_point now) {
    if (now - checked_ < kRecheck) return;
    checked_ = now;
    if (fingerprint() != fingerprint_) reload();
}

bool PolkitRules::may_grant(Session session) const {
    if (rules_name_action_) return true;
    return defaults_ && default_may_grant(*defaults_, session);
}

}  // namespace pidnsd
