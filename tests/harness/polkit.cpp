// polkitd on a private bus, and its configuration files installed for a run and put back after.
#include "polkit.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace pidns::harness {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string pidns_policy_file() { return std::string(PIDNS_SOURCE_DIR) + "/dbus/org.pidns.policy"; }

std::string inspect_rule(const std::string& condition) {
    return "polkit.addRule(function(action, subject) {\n"
           "    if (action.id == \"org.pidns.inspect\" && " + condition + ")\n"
           "        return polkit.Result.YES;\n"
           "});\n";
}

InstalledFile::InstalledFile(std::string path, const std::string& content) : path_(std::move(path)) {
    if (fs::exists(path_)) {
        old_ = read_file(path_);
        had_ = true;
    }
    std::error_code ec;
    fs::create_directories(fs::path(path_).parent_path(), ec);
    std::ofstream(path_) << content;
}

InstalledFile::~InstalledFile() {
    std::error_code ec;
    if (had_)
        std::ofstream(path_) << old_;
    else
        fs::remove(path_, ec);
}

Polkitd::Polkitd(const PrivateBus& bus, bool verbose) {
    SpawnOptions o;
    o.env = {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()};
    if (verbose) {
        o.out_path = dir_.path() + "/stdout";
        o.err_path = dir_.path() + "/stderr";
    }
    pid_ = spawn(verbose ? Argv{kPolkitdBin} : Argv{kPolkitdBin, "--no-debug"}, o);
    const bool owned = eventually(
        [&] {
            const auto r = run({"busctl", "--address=" + bus.address(), "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameHasOwner", "s", "org.freedesktop.PolicyKit1"});
            return r.out == "b true\n";
        },
        20s, 20ms);
    if (!owned) {
        stop();
        throw std::runtime_error("polkitd did not take its name on the private bus");
    }
}

std::string Polkitd::log() const {
    std::string text;
    for (const char* name : {"/stdout", "/stderr"}) {
        std::error_code ec;
        if (fs::exists(dir_.path() + name, ec)) text += read_file(dir_.path() + name);
    }
    return text;
}

void Polkitd::stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void Polkitd::freeze() const {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void Polkitd::thaw() const {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

}  // namespace pidns::harness
