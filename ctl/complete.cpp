// pidnsctl __complete: candidates for the shell completions, from CLI11's definitions and pidnsd.
#include "complete.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fmt/core.h>
#include <fstream>
#include <memory>
#include <optional>
#include <set>

#include "client.h"
#include "commands.h"
#include "escape.h"
#include "ns_arg.h"

namespace pidnsctl {
namespace {

const char* const kTypes[] = {"pid", "user", "mnt", "net", "uts", "ipc", "cgroup", "time"};

struct Candidate {
    std::string word, desc;
};

enum class Directive { normal, nospace, files };

struct Completion {
    std::vector<Candidate> candidates;
    Directive directive = Directive::normal;
};

// The bus the completed command line names, and a connection to it made when first needed.
class Live {
public:
    void set_address(std::string a) { address_ = std::move(a); }
    // nullptr when there is no bus or no pidnsd: completion then has no live values.
    pidns::client::Client* client() {
        if (!tried_) {
            tried_ = true;
            try {
                client_ = std::make_unique<pidns::client::Client>(address_);
                client_->ping();
            } catch (...) {
                client_.reset();
            }
        }
        return client_.get();
    }
    // f(client), or nothing on any error.
    template <class F>
    void with(F&& f) {
        if (auto* c = client()) try {
                f(*c);
            } catch (const std::exception& e) {
                if (std::getenv("PIDNSCTL_COMPLETE_DEBUG")) std::fprintf(stdout, "debug: %s\n", e.what());
            }
    }

private:
    std::string address_;
    bool tried_ = false;
    std::unique_ptr<pidns::client::Client> client_;
};

std::string comm_of(std::uint32_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string s;
    std::getline(f, s);
    return pidns::printable_text(s);
}

bool takes_value(const CLI::Option* o) { return o->get_expected_min() > 0; }

// The option named `name` ("--from", "-o"), of the subcommand first (its options fall through to
// the app's).
CLI::Option* find_option(CLI::App& app, CLI::App* sub, const std::string& name) {
    for (CLI::App* a : {sub, &app}) {
        if (!a) continue;
        for (auto* o : a->get_options()) {
            if (o->get_positional()) continue;
            for (const auto& l : o->get_lnames())
                if (name == "--" + l) return o;
            for (const auto& s : o->get_snames())
                if (name == "-" + s) return o;
        }
    }
    return nullptr;
}

std::string long_name(const CLI::Option* o) {
    return o->get_lnames().empty() ? "-" + o->get_snames().front() : "--" + o->get_lnames().front();
}

class Completer {
public:
    Completer(CLI::App& app, Live& live) : app_(app), live_(live) {}

    Completion complete(const std::vector<std::string>& words) {
        const std::string cur = words.empty() ? "" : words.back();
        CLI::Option* pending = nullptr;
        bool after_dashes = false;
        for (std::size_t i = 0; i + 1 < words.size(); ++i) {
            const std::string& w = words[i];
            if (pending) {
                value_given(pending, w);
                pending = nullptr;
            } else if (after_dashes || w.size() < 2 || w[0] != '-') {
                if (!sub_) sub_ = find_subcommand(w);
                else positionals_.push_back(w);
            } else if (w == "--") {
                after_dashes = true;
            } else if (w.starts_with("--")) {
                const auto eq = w.find('=');
                auto* o = find_option(app_, sub_, w.substr(0, eq));
                if (!o) continue;
                if (eq != std::string::npos) value_given(o, w.substr(eq + 1));
                else if (takes_value(o)) pending = o;
                else if (w == "--system") live_.set_address("");
            } else {
                auto* o = find_option(app_, sub_, w.substr(0, 2));
                if (o && takes_value(o)) {
                    if (w.size() > 2) value_given(o, w.substr(2));
                    else pending = o;
                }
            }
        }
        Completion c;
        if (pending) {
            value(pending, cur, "", c);
        } else if (!after_dashes && cur.starts_with("--") && cur.find('=') != std::string::npos) {
            const auto eq = cur.find('=');
            if (auto* o = find_option(app_, sub_, cur.substr(0, eq)); o && takes_value(o))
                value(o, cur.substr(eq + 1), cur.substr(0, eq + 1), c);
        } else if (!after_dashes && cur.starts_with("-")) {
            options(c);
        } else if (!sub_) {
            for (const auto* s : app_.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
                c.candidates.push_back({s->get_name(), s->get_description()});
        } else {
            positional(c, cur);
        }
        std::erase_if(c.candidates, [&](const Candidate& k) { return !k.word.starts_with(cur); });
        // No space after what is to go on ("--json=", "@", "container:", "/proc/", "pid:["), so
        // that a single such candidate leaves the cursor where the rest is typed.
        if (c.directive == Directive::normal &&
            std::any_of(c.candidates.begin(), c.candidates.end(), [](const Candidate& k) {
                return !k.word.empty() && std::string_view("=:@[/,").find(k.word.back()) != std::string_view::npos;
            }))
            c.directive = Directive::nospace;
        return c;
    }

private:
    CLI::App* find_subcommand(const std::string& name) {
        for (auto* s : app_.get_subcommands([](CLI::App* a) { return !a->get_group().empty(); }))
            if (s->get_name() == name) return s;
        return nullptr;
    }

    void value_given(const CLI::Option* o, const std::string& v) {
        const std::string n = long_name(o);
        if (n == "--address") live_.set_address(v);
        else if (n == "--from") from_ = v;
    }

    void options(Completion& c) {
        std::set<std::string> seen;
        for (CLI::App* a : {sub_, &app_}) {
            if (!a) continue;
            for (const auto* o : a->get_options()) {
                if (o->get_positional()) continue;
                auto add = [&](const std::string& word) {
                    if (seen.insert(word).second) c.candidates.push_back({word, o->get_description()});
                };
                for (const auto& l : o->get_lnames()) add("--" + l + (takes_value(o) ? "=" : ""));
                for (const auto& s : o->get_snames()) add("-" + s);
            }
        }
    }

    // The value of option `o` (its text so far `v`, after `prefix` in the same word).
    void value(const CLI::Option* o, const std::string& v, const std::string& prefix, Completion& c) {
        const std::string n = long_name(o);
        auto add = [&](const std::string& word, const std::string& desc = {}) {
            c.candidates.push_back({prefix + word, desc});
        };
        if (n == "--json") {
            for (const char* m : {"pretty", "short", "off"}) add(m);
        } else if (n == "--address") {
            add("unix:path=/run/dbus/system_bus_socket", "the system bus");
        } else if (n == "--type") {
            for (const char* t : kTypes) add(t);
        } else if (n == "--output") {
            // A list that may go on: the columns after the last comma, each with + or - when the
            // user began with one, in the case the user began with.
            const auto comma = v.rfind(',');
            const std::string head = comma == std::string::npos ? "" : v.substr(0, comma + 1);
            std::string item = v.substr(head.size());
            std::string sign;
            if (!item.empty() && (item[0] == '+' || item[0] == '-')) sign = item.substr(0, 1), item.erase(0, 1);
            const bool lower = !item.empty() && std::islower(static_cast<unsigned char>(item[0]));
            for (const auto& col : list_columns()) {
                std::string name = col.name;
                if (lower) std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
                add(head + sign + name, col.help);
            }
            c.directive = Directive::nospace;
        } else if (n == "--from" || n == "--to") {
            ns(v, "pid", prefix, c);
        } else if (n == "--check") {
            c.directive = Directive::files;
        }
    }

    void positional(Completion& c, const std::string& cur) {
        const std::string name = sub_->get_name();
        if (!positionals_.empty()) return;
        if (name == "status") pids(cur, "", "", c);
        else if (name == "translate") pids(cur, from_, "", c);
        else if (name == "tree" || name == "dump") ns(cur, "pid", "", c);
        else if (name == "ps") ns(cur, "", "", c);
    }

    // Pids you may see (in pid namespace `in` when given: translate's --from), as "PREFIX<pid>";
    // `typed` is what follows PREFIX so far.
    void pids(const std::string& typed, const std::string& in, const std::string& prefix, Completion& c) {
        if (!typed.empty() && !std::isdigit(static_cast<unsigned char>(typed[0]))) return;
        live_.with([&](pidns::client::Client& client) {
            std::vector<std::uint32_t> all;
            for (const auto& n : client.list_namespaces("pid")) {
                const auto p = client.list_processes(n.id);
                all.insert(all.end(), p.begin(), p.end());
                if (all.size() >= kMaxCandidates) break;
            }
            std::sort(all.begin(), all.end());
            all.erase(std::unique(all.begin(), all.end()), all.end());
            // In another pid namespace: the same processes by their pids there (0: none there).
            const auto shown = in.empty() ? all : client.translate_pids(all, 0, resolve_ns(client, in, "pid"));
            for (std::size_t i = 0; i < all.size() && c.candidates.size() < kMaxCandidates; ++i)
                if (shown[i] != 0) c.candidates.push_back({prefix + std::to_string(shown[i]), comm_of(all[i])});
        });
    }

    // A namespace argument of `type` ("" any: ps).
    void ns(const std::string& v, const std::string& type, const std::string& prefix, Completion& c) {
        auto add = [&](const std::string& word, const std::string& desc = {}) {
            c.candidates.push_back({prefix + word, desc});
        };
        if (v.starts_with("@")) {
            pids(v.substr(1), "", prefix + "@", c);
            return;
        }
        if (v.starts_with("/") || v.starts_with(".")) {
            c.directive = Directive::files;
            return;
        }
        const auto colon = v.find(':');
        const bool digits = !v.empty() && std::isdigit(static_cast<unsigned char>(v[0]));
        if (v.empty() || (colon == std::string::npos && !digits)) {
            // The forms, to go on typing after them.
            add("@", "the namespace of process PID");
            add("container:", "a container's by its id or name");
            add("unit:", "a systemd unit's");
            add("machine:", "a systemd-machined machine's");
            add("/proc/", "a namespace file: /proc/PID/ns/TYPE");
            add("/run/netns/", "a namespace file: ip netns add's");
            for (const char* t : kTypes)
                if (type.empty() || type == t) add(std::string(t) + ":[", "TYPE:[INODE], as readlink /proc/PID/ns/TYPE prints it");
            c.directive = Directive::nospace;
            return;
        }
        const std::string kind = colon == std::string::npos ? "" : v.substr(0, colon);
        live_.with([&](pidns::client::Client& client) {
            const bool names = kind == "container" || kind == "unit" || kind == "machine";
            // The namespaces of the type wanted, or of any with a name or for an id.
            const auto all = client.describe_namespaces(names ? type.empty() ? "pid" : type : kind.empty() ? type : kind);
            std::set<std::string> seen;
            auto once = [&](const std::string& word, const std::string& desc) {
                if (!word.empty() && seen.insert(word).second && c.candidates.size() < kMaxCandidates) add(word, desc);
            };
            for (const auto& d : all) {
                const auto& n = d.ns;
                const std::string what = n.type + ":[" + std::to_string(n.inode) + "] " + d.labels.command;
                if (digits) {
                    once(std::to_string(n.id), what);
                    once(std::to_string(n.inode), n.type + " id " + std::to_string(n.id) + " " + d.labels.command);
                } else if (kind == "container") {
                    const auto& l = d.labels;
                    if (!l.container_name.empty()) once("container:" + l.container_name, l.container_engine + " " + l.container_id.substr(0, 12));
                    if (l.container_id.size() > 12) once("container:" + l.container_id.substr(0, 12), l.container_engine + " " + l.container_name);
                    else if (!l.container_id.empty()) once("container:" + l.container_id, l.container_engine);
                    for (const auto& s : d.sharers) {
                        if (!s.name.empty()) once("container:" + s.name, s.engine + " " + s.id.substr(0, 12));
                        if (s.id.size() > 12) once("container:" + s.id.substr(0, 12), s.engine + " " + s.name);
                    }
                } else if (kind == "unit") {
                    once("unit:" + d.labels.unit, what);
                } else if (kind == "machine") {
                    once("machine:" + d.labels.machine, what);
                } else if (n.type == kind) {
                    once(n.type + ":[" + std::to_string(n.inode) + "]", "id " + std::to_string(n.id) + " " + d.labels.command);
                }
            }
        });
    }

    CLI::App& app_;
    Live& live_;
    CLI::App* sub_ = nullptr;
    std::vector<std::string> positionals_;
    std::string from_;
};

}  // namespace

int cmd_complete(CLI::App& app, const std::vector<std::string>& words) {
    // Nothing on the terminal but the candidates: a completion never complains.
    if (const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
        ::dup2(null, 2);
        ::close(null);
    }
    // Bounded: a pidnsd that does not answer ends the completion quietly, with no candidates.
    struct sigaction sa {};
    sa.sa_handler = [](int) { ::_exit(0); };
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(kCompleteSeconds);
    Live live;
    const auto c = Completer(app, live).complete(words);
    std::string out = c.directive == Directive::nospace ? ":nospace\n" : c.directive == Directive::files ? ":files\n" : ":default\n";
    for (std::size_t i = 0; i < c.candidates.size() && i < kMaxCandidates; ++i) {
        // One line each: tabs and newlines of a name are escaped, so the separator stays one.
        out += pidns::printable_text(c.candidates[i].word);
        if (!c.candidates[i].desc.empty()) out += "\t" + pidns::printable_text(c.candidates[i].desc);
        out += "\n";
    }
    ::alarm(0);
    std::fputs(out.c_str(), stdout);
    return 0;
}

}  // namespace pidnsctl
