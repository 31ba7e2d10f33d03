// A background shell script that reports key=value lines and waits: for tests that build mounts and namespaces.
#include "script_agent.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <stdexcept>

namespace pidns::testing {

ScriptAgent::ScriptAgent(const std::vector<std::string>& prefix, const std::string& script) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::vector<std::string> argv = prefix;
    for (const char* a : {"sh", "-ec"}) argv.emplace_back(a);
    argv.push_back(script + "\necho ready\nexec sleep 100000\n");
    // Made before fork(): the child of a multi-threaded process must not allocate before it execs.
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(p[1], 1);
        ::execvp(a[0], a.data());
        ::_exit(127);
    }
    ::close(p[1]);
    std::string text;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (text.find("ready\n") == std::string::npos) {
        ssize_t got = 0;
        const bool late = std::chrono::steady_clock::now() >= until;
        if (!late) {
            pollfd pfd{p[0], POLLIN, 0};
            if (::poll(&pfd, 1, 100) <= 0) continue;
            char buf[512];
            got = ::read(p[0], buf, sizeof buf);
            if (got > 0) {
                text.append(buf, static_cast<std::size_t>(got));
                continue;
            }
        }
        ::close(p[0]);
        kill();
        throw std::runtime_error(std::string("the setup script ") + (late ? "took more than 10 s" : "failed") +
                                 "; its output so far: " + text);
    }
    ::close(p[0]);
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
        if (auto eq = line.find('='); eq != std::string::npos) values_[line.substr(0, eq)] = line.substr(eq + 1);
}

ScriptAgent::~ScriptAgent() { kill(); }

void ScriptAgent::kill() {
    if (pid_ <= 0) return;  // never kill(-1) or a process group
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

}  // namespace pidns::testing
