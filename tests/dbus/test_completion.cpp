// pidnsctl's shell completions in real shells on a real terminal (tmux, send-keys Tab,
// capture-pane): bash without the bash-completion package (bash --norc with only
// completion/pidnsctl.bash sourced), bash with it, and zsh (completion/_pidnsctl), against the
// real pidnsd on a private bus (DBUS_SYSTEM_BUS_ADDRESS), with a process in a pid and net
// namespace of its own whose cgroup is a docker container's unit.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.h"
#include "cgroups.h"
#include "tmux.h"

using namespace pidns::harness;
using namespace std::chrono_literals;

namespace {


enum class ShellKind { bash_plain, bash_completion_package, zsh };

const char* name_of(ShellKind k) {
    switch (k) {
    case ShellKind::bash_plain: return "bash --norc, the script alone";
    case ShellKind::bash_completion_package: return "bash with the bash-completion package";
    case ShellKind::zsh: return "zsh -f with compinit";
    }
    return "?";
}

// An interactive shell in tmux with pidnsctl's completion loaded, pidnsctl on PATH and the bus
// in DBUS_SYSTEM_BUS_ADDRESS; its prompt is "$ ".
class Shell {
public:
    Shell(ShellKind kind, const std::string& bin_dir, const std::string& bus_address, const std::string& home)
        : kind_(kind), tmux_(kind == ShellKind::zsh ? "zsh -f -i" : "bash --norc --noprofile -i", 200, 50,
                {"PATH=" + bin_dir + ":/usr/sbin:/usr/bin:/sbin:/bin", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_address,
                 "HOME=" + home, "INPUTRC=/dev/null", "TERM=screen"}) {
        const std::string src = std::string(PIDNS_SOURCE_DIR) + "/completion";
        switch (kind) {
        case ShellKind::bash_plain:
            setup(". " + src + "/pidnsctl.bash; PS1='$ '");
            break;
        case ShellKind::bash_completion_package:
            setup(". /usr/share/bash-completion/bash_completion; . " + src + "/pidnsctl.bash; PS1='$ '");
            break;
        case ShellKind::zsh:
            setup("fpath=(" + src + " $fpath); autoload -Uz compinit; compinit -u -D; PROMPT='$ '");
            break;
        }
    }

    // Types `line` at an empty prompt, presses Tab `tabs` times, then types a marker, and returns
    // the command line once the shell shows the marker (every completion is done by then), without
    // the prompt and the marker.
    std::string complete(const std::string& line, int tabs = 1) {
        const std::string marker = "QQ" + std::to_string(++cases_) + "ZZ";
        tmux_.keys({"C-u"});
        tmux_.type(line);
        for (int i = 0; i < tabs; ++i) {
            tmux_.keys({"Tab"});
            if (kind_ == ShellKind::zsh) settle();  // bash reads what follows after the completion
        }
        tmux_.type(marker);
        std::string found;
        tmux_.wait(
            [&](const std::string& screen) {
                const auto at = screen.rfind(marker);
                if (at == std::string::npos) return false;
                shown_ = screen;
                const auto bol = screen.rfind('\n', at);
                found = screen.substr(bol == std::string::npos ? 0 : bol + 1, at - (bol == std::string::npos ? 0 : bol + 1));
                return true;
            },
            patience(10s));
        tmux_.keys({"C-u"});
        if (found.starts_with("$ ")) found.erase(0, 2);
        return found;
    }
    [[nodiscard]] std::string screen() const { return tmux_.screen(); }
    // The screen as it was when the last completion was done (zsh clears its list with the line).
    [[nodiscard]] const std::string& shown() const { return shown_; }
    // A command run at the prompt, and its output once a marker follows it.
    void run_line(const std::string& line) {
        const std::string marker = "DONE" + std::to_string(++cases_);
        tmux_.type(line + "; echo " + marker);
        tmux_.keys({"Enter"});
        REQUIRE(tmux_.wait([&](const std::string& s) { return s.find(marker + "\n") != std::string::npos; }, patience(20s)));
    }

private:
    // Waits until the screen has not changed for a while: the completion is done (zsh, unlike
    // bash, drops what is typed while its completion runs).
    void settle() {
        std::string last = tmux_.screen();
        auto since = std::chrono::steady_clock::now();
        const auto until = since + patience(10s);
        while (std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(50ms);
            const auto now = tmux_.screen();
            if (now != last) {
                last = now;
                since = std::chrono::steady_clock::now();
            } else if (std::chrono::steady_clock::now() - since > patience(400ms)) {
                return;
            }
        }
    }
    void setup(const std::string& line) {
        REQUIRE(tmux_.wait([](const std::string& s) { return !s.empty() && s.find_first_not_of(" \n") != std::string::npos; },
                           20s));
        run_line(line);
        run_line("clear");
    }
    ShellKind kind_;
    Tmux tmux_;
    int cases_ = 0;
    std::string shown_;
};

}  // namespace

TEST_CASE("completion: bash (with and without bash-completion) and zsh complete without changing what was typed, with live values from pidnsd") {
    const fs::path root = systemd_hierarchy();
    REQUIRE(!root.empty());
    PrivateBus bus;
    std::optional<Daemon> d(std::in_place, bus);
    Client c(bus.address());
    TempDir dir;
    // pidnsctl as a user runs it: by its name on PATH.
    const std::string bin = dir.path() + "/bin";
    fs::create_directories(bin);
    fs::create_symlink(PIDNSCTL_BIN, bin + "/pidnsctl");

    // A pid and net namespace whose init runs in a docker container's unit.
    const std::string top = "pidnsd-test-" + std::to_string(getpid()) + "-completion.slice";
    const std::string unit = "docker-" + kTestContainerId + ".scope";
    TestCgroup cg(root, top + "/" + unit);
    Proc p({"unshare", "-p", "-f", "-n", "sleep", "1000"});
    const pid_t init = child_of(p.pid());
    REQUIRE(init > 0);
    struct KillInit {
        pid_t pid;
        ~KillInit() {
            ::kill(pid, SIGKILL);
            for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
        }
    } kill_init{init};
    wait_comm(init, "sleep");
    cg.move(init);
    const std::string P = std::to_string(init);
    struct stat st {};
    REQUIRE(stat(("/proc/" + P + "/ns/net").c_str(), &st) == 0);
    const std::string net_inode = std::to_string(st.st_ino);
    (void)expected_ns_id(init, "net");  // indexed
    // pidnsd names it as the container (the labels are read when asked).
    bool named = false;
    for (int i = 0; i < 300 && !named; ++i) {
        for (const auto& n : c.describe_namespaces("pid"))
            if (n.labels.container_id == kTestContainerId) named = true;
        if (!named) std::this_thread::sleep_for(20ms);
    }
    REQUIRE(named);

    for (const ShellKind kind : {ShellKind::bash_plain, ShellKind::bash_completion_package, ShellKind::zsh}) {
        SECTION(name_of(kind)) {
            if (kind == ShellKind::bash_completion_package)
                REQUIRE(access("/usr/share/bash-completion/bash_completion", R_OK) == 0);
            Shell sh(kind, bin, bus.address(), dir.path());
            // A pid after @ keeps its @, whatever COMP_WORDBREAKS holds (bash without the package
            // used to turn "@PID" into "PID": another namespace, silently).
            for (const std::string opt : {"--from @", "--from=@"}) {
                const std::string typed = "pidnsctl translate 1 " + opt + P;
                const auto got = sh.complete(typed);
                INFO(name_of(kind) << ": '" << typed << "' -> '" << got << "'\n" << sh.screen());
                CHECK(got.starts_with(typed));
                CHECK(got.find(" " + P) == std::string::npos);
            }
            struct Case {
                std::string typed, want;
            };
            std::vector<Case> cases = {
                {"pidnsctl --json=p", "pidnsctl --json=pretty "},
                {"pidnsctl --no-l", "pidnsctl --no-legend "},
                // A column list goes on after a comma: no space after a column, in either form.
                {"pidnsctl list -o CON", "pidnsctl list -o CONTAINER"},
                {"pidnsctl list -o CONTAINER,NE", "pidnsctl list -o CONTAINER,NETNS"},
                {"pidnsctl list -o +PAR", "pidnsctl list -o +PARENT"},
                // The namespace forms, then the names pidnsd knows.
                {"pidnsctl ps cont", "pidnsctl ps container:"},
                {"pidnsctl translate 1 --from u", "pidnsctl translate 1 --from unit:"},
                {"pidnsctl tree mach", "pidnsctl tree machine:"},
                {"pidnsctl ps container:" + kTestContainerId.substr(0, 6),
                 "pidnsctl ps container:" + kTestContainerId.substr(0, 12) + " "},
                {"pidnsctl translate 1 --from unit:" + unit.substr(0, 20), "pidnsctl translate 1 --from unit:" + unit + " "},
                // Nothing to offer: nothing changes.
                {"pidnsctl translate 1 --from @99999999", "pidnsctl translate 1 --from @99999999"},
            };
            // TYPE:[INODE]: zsh takes an unquoted [ for a pattern, so there the user quotes it.
            if (kind == ShellKind::zsh)
                cases.push_back({"pidnsctl ps net:\\[" + net_inode, "pidnsctl ps net:\\[" + net_inode + "\\] "});
            else
                cases.push_back({"pidnsctl ps net:[" + net_inode, "pidnsctl ps net:[" + net_inode + "] "});
            for (const auto& k : cases) {
                const auto got = sh.complete(k.typed);
                INFO(name_of(kind) << ": '" << k.typed << "' -> '" << got << "'\n" << sh.screen());
                CHECK(got == k.want);
            }
            // Two subcommands begin so: both are listed, the line stays (bash lists at the second
            // Tab; zsh at the first, its second Tab would pick one, as its menu completion does).
            const auto got = sh.complete("pidnsctl tr", kind == ShellKind::zsh ? 1 : 2);
            INFO(sh.shown());
            CHECK(got == "pidnsctl tr");
            const auto screen = sh.shown();
            CHECK(screen.find("translate") != std::string::npos);
            CHECK(screen.find("tree") != std::string::npos);

            // Without pidnsd: no live values and no complaint, the static ones still.
            d.reset();
            const auto quiet = sh.complete("pidnsctl translate 1 --from @" + P);
            CHECK(quiet == "pidnsctl translate 1 --from @" + P);
            CHECK(sh.screen().find("pidnsctl:") == std::string::npos);
            CHECK(sh.complete("pidnsctl --json=s") == "pidnsctl --json=short ");
        }
    }
}
