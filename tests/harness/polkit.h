// A real polkitd on a private bus, and the files that configure it for a run (the action, a rules
// file), each put back as it was afterwards: what the polkit tests and bench_polkit run against.
#pragma once

#include <sys/types.h>

#include <string>

#include "bus.h"
#include "process.h"

namespace pidns::harness {

inline constexpr const char* kPolkitdBin = "/usr/lib/polkit-1/polkitd";  // package polkitd
inline constexpr const char* kPolkitActionFile = "/usr/share/polkit-1/actions/org.pidns.policy";
// The project's action file (dbus/org.pidns.policy), to install as kPolkitActionFile.
std::string pidns_policy_file();

// A polkit rules file that answers YES for org.pidns.inspect when `condition` (JavaScript over
// `action` and `subject`, e.g. `subject.user == "daemon"`) holds, and has no opinion otherwise.
std::string inspect_rule(const std::string& condition);

// A file installed for the run's duration (its directory made if need be); on destruction the
// previous content is put back, or the file removed if there was none.
class InstalledFile {
public:
    InstalledFile(std::string path, const std::string& content);
    ~InstalledFile();
    InstalledFile(const InstalledFile&) = delete;
    InstalledFile& operator=(const InstalledFile&) = delete;

private:
    std::string path_, old_;
    bool had_ = false;
};

// polkitd on `bus`; the constructor returns once it owns org.freedesktop.PolicyKit1 there (or
// throws). Killed (SIGKILL) and reaped on destruction or stop().
class Polkitd {
public:
    // verbose: without --no-debug, its messages (rules loaded, script errors) kept for log().
    explicit Polkitd(const PrivateBus& bus, bool verbose = false);
    ~Polkitd() { stop(); }
    Polkitd(const Polkitd&) = delete;
    Polkitd& operator=(const Polkitd&) = delete;
    void stop();
    void freeze() const;  // SIGSTOP: every check waits
    void thaw() const;    // SIGCONT
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    // What a verbose polkitd wrote so far (stdout and stderr): for a failure's message.
    [[nodiscard]] std::string log() const;

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

}  // namespace pidns::harness
