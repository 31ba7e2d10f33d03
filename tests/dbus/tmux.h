// A real terminal for tests: a tmux server of the test's own (its own -L socket, as other people
// run tmux on this host), one window of a given size running a command, keys sent to it and its
// screen read back (capture-pane).
#pragma once

#include <unistd.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace pidns::harness {

class Tmux {
public:
    // `command` run by sh in a window `width` x `height`, with `env` ("NAME=value") added.
    Tmux(const std::string& command, int width, int height, const std::vector<std::string>& env = {}) {
        static int servers = 0;  // a server of its own each time: a killed one may still be going away
        socket_ = "pidns-test-" + std::to_string(getpid()) + "-" + std::to_string(++servers);
        // The environment through env(1): tmux's own -e does not reach the window's process for
        // every variable (PATH comes from the server's environment).
        std::string line = "env";
        for (const auto& e : env) line += " " + quoted(e);
        line += " " + command;
        const std::vector<std::string> argv = {"tmux", "-L", socket_, "-f", "/dev/null", "new-session", "-d",
                                               "-x", std::to_string(width), "-y", std::to_string(height), line};
        const auto r = run(argv);
        if (r.status != 0) throw std::runtime_error("tmux new-session failed: " + r.err);
        // The window keeps the size asked for, whatever clients attach.
        run({"tmux", "-L", socket_, "set-option", "-g", "window-size", "manual"});
    }
    ~Tmux() { run({"tmux", "-L", socket_, "kill-server"}); }
    Tmux(const Tmux&) = delete;
    Tmux& operator=(const Tmux&) = delete;

    // Text typed as it is (send-keys -l: no key names, "@" and ";" stay).
    void type(const std::string& text) const { run({"tmux", "-L", socket_, "send-keys", "-t", "0", "-l", text}); }
    // Keys by tmux's names: "Tab", "Enter", "C-u".
    void keys(const std::vector<std::string>& names) const {
        std::vector<std::string> argv = {"tmux", "-L", socket_, "send-keys", "-t", "0"};
        argv.insert(argv.end(), names.begin(), names.end());
        run(argv);
    }
    // The screen and its history; `joined`: lines the terminal wrapped given back whole (-J);
    // `escapes`: with the colour and attribute sequences (-e).
    [[nodiscard]] std::string screen(bool joined = false, bool escapes = false) const {
        std::vector<std::string> argv = {"tmux", "-L", socket_, "capture-pane", "-p", "-S", "-", "-t", "0"};
        if (joined) argv.push_back("-J");
        if (escapes) argv.push_back("-e");
        return run(argv).out;
    }
    // The screen's lines without the empty ones at the end.
    [[nodiscard]] std::vector<std::string> lines(bool joined = false) const {
        std::vector<std::string> out;
        std::istringstream in(screen(joined));
        for (std::string l; std::getline(in, l);) out.push_back(l);
        while (!out.empty() && out.back().find_first_not_of(' ') == std::string::npos) out.pop_back();
        return out;
    }
    // The last line that is not empty (where a shell's prompt and command line are).
    [[nodiscard]] std::string last_line() const {
        const auto l = lines();
        return l.empty() ? std::string() : l.back();
    }
    // Waits until `done(screen)` holds; false after `timeout`.
    bool wait(const std::function<bool(const std::string&)>& done, std::chrono::milliseconds timeout,
              bool joined = false) const {
        const auto until = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (done(screen(joined))) return true;
            if (std::chrono::steady_clock::now() > until) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }

private:
    // `s` in single quotes for sh.
    static std::string quoted(const std::string& s) {
        std::string q = "'";
        for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
        return q + "'";
    }
    std::string socket_;
};

}  // namespace pidns::harness
