/* pidnsd client example in C with sd-bus (libsystemd; Debian: apt install libsystemd-dev).
 *
 *   pidns_translate [--address ADDR] [--from NS] [--to NS] PID
 *       The process PID (a pid in namespace --from, default: yours) as pidnsd sees it:
 *       GetProcess (its NSpid/NStgid/NSpgid/NSsid chains and its 8 namespaces),
 *       TranslatePid (its pid in namespace --to, default: its own pid namespace) and
 *       its pid namespace's entry of ListNamespaces.
 *   pidns_translate [--address ADDR] --list [TYPE]
 *       ListNamespaces(TYPE) as a table (TYPE: pid user mnt net uts ipc cgroup time; default all).
 *   pidns_translate [--address ADDR] --monitor SECONDS
 *       Subscribe, then print NamespaceAdded/NamespaceRemoved/Resync for SECONDS seconds
 *       (sd_bus_match_signal and an sd_event loop).
 *
 * NS is 0 (yours), a namespace id as ListNamespaces prints it, or an nsfs inode as
 * `readlink /proc/PID/ns/pid` prints it. The bus is --address, else $DBUS_SYSTEM_BUS_ADDRESS
 * (sd_bus_open_system reads it), else the system bus.
 *
 * Exit status: 0 ok, 1 failure, 2 usage, 4 no such process or namespace, 5 access denied.
 * On a D-Bus error it prints pidnsd's error name and its whole message.
 * The API reference is the doc annotations in dbus/org.pidns.Manager1.xml.
 *
 * Build: cc -o pidns_translate pidns_translate.c $(pkg-config --cflags --libs libsystemd)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define BUS_NAME "org.pidns"
#define OBJECT_PATH "/org/pidns"
#define INTERFACE "org.pidns.Manager1"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOT_FOUND = 4, EXIT_ACCESS_DENIED = 5 };

/* Error names (dbus/org.pidns.Manager1.xml) and the exit status each one gives. */
static int exit_for_error(const sd_bus_error *e) {
    if (sd_bus_error_has_name(e, "org.pidns.Error.NoSuchProcess") ||
        sd_bus_error_has_name(e, "org.pidns.Error.NoSuchNamespace"))
        return EXIT_NOT_FOUND;
    if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED)) return EXIT_ACCESS_DENIED;
    return EXIT_FAIL;
}

/* Prints the error of a failed call: pidnsd's error name and its whole message (busctl would
 * print only the generic text of a well-known name such as AccessDenied). */
static int report(const char *what, const sd_bus_error *e, int r) {
    if (sd_bus_error_is_set(e))
        fprintf(stderr, "pidns_translate: %s: %s\n", e->name, e->message ? e->message : "(no message)");
    else
        fprintf(stderr, "pidns_translate: %s: %s\n", what, strerror(-r));
    return sd_bus_error_is_set(e) ? exit_for_error(e) : EXIT_FAIL;
}

static int parse_u64(const char *s, uint64_t *out) {
    /* `pid:[4026531836]` as readlink prints it is accepted too. */
    char buf[64];
    size_t n = strlen(s);
    if (strncmp(s, "pid:[", 5) == 0 && n > 6 && s[n - 1] == ']' && n - 6 < sizeof buf) {
        memcpy(buf, s + 5, n - 6);
        buf[n - 6] = '\0';
        s = buf;
    }
    if (*s < '0' || *s > '9') return -EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return -EINVAL;
    *out = v;
    return 0;
}

static int connect_bus(const char *address, sd_bus **bus) {
    if (!address) return sd_bus_open_system(bus); /* honours $DBUS_SYSTEM_BUS_ADDRESS */
    int r = sd_bus_new(bus);
    if (r < 0) return r;
    r = sd_bus_set_address(*bus, address);
    if (r >= 0) r = sd_bus_set_bus_client(*bus, 1); /* Hello: a unique name, so signals reach us */
    if (r >= 0) r = sd_bus_start(*bus);
    if (r < 0) *bus = sd_bus_unref(*bus);
    return r;
}

/* TranslatePid(u pid, t from, t to) -> u */
static int translate(sd_bus *bus, uint32_t pid, uint64_t from, uint64_t to, uint32_t *out, sd_bus_error *e) {
    sd_bus_message *reply = NULL;
    int r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, INTERFACE, "TranslatePid", e, &reply, "utt", pid, from, to);
    if (r >= 0) r = sd_bus_message_read(reply, "u", out);
    sd_bus_message_unref(reply);
    return r;
}

/* One chain of GetProcess (au) printed as /proc/PID/status does. */
static int print_chain(sd_bus_message *m, const char *name, uint32_t *last) {
    const void *data = NULL;
    size_t size = 0;
    int r = sd_bus_message_read_array(m, 'u', &data, &size);
    if (r < 0) return r;
    const uint32_t *p = data;
    printf("%s:", name);
    for (size_t i = 0; i < size / sizeof *p; ++i) printf("\t%" PRIu32, p[i]);
    printf("\n");
    if (last) *last = size ? p[size / sizeof *p - 1] : 0;
    return 0;
}

/* One ListNamespaces entry, (ttsttuuuu): id inode type parent owner level init_pid nprocs owner_uid. */
struct ns_entry {
    uint64_t id, inode, parent, owner;
    const char *type;
    uint32_t level, init_pid, nprocs, owner_uid;
};

static int read_entry(sd_bus_message *m, struct ns_entry *n) {
    return sd_bus_message_read(m, "(ttsttuuuu)", &n->id, &n->inode, &n->type, &n->parent, &n->owner, &n->level,
                               &n->init_pid, &n->nprocs, &n->owner_uid);
}

static int show_process(sd_bus *bus, uint32_t pid, uint64_t from, bool to_given, uint64_t to) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL, *list = NULL;
    int ret = EXIT_FAIL, r;

    /* A pid in another namespace is first translated into the caller's (GetProcess takes those). */
    uint32_t my_pid = pid;
    if (from != 0) {
        r = translate(bus, pid, from, 0, &my_pid, &e);
        if (r < 0) {
            ret = report("TranslatePid", &e, r);
            goto out;
        }
        if (my_pid == 0) {
            fprintf(stderr, "pidns_translate: task %" PRIu32 " of namespace %" PRIu64 " has no pid in your pid namespace\n",
                    pid, from);
            ret = EXIT_NOT_FOUND;
            goto out;
        }
    }

    /* GetProcess(u) -> au au au au a{st}: four chains (first: your view, last: the task's own
     * namespace) and the namespace id of each type. The chains are printed once the target
     * namespace is known, so keep the reply and read the dictionary first. */
    r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, INTERFACE, "GetProcess", &e, &reply, "u", my_pid);
    if (r < 0) {
        ret = report("GetProcess", &e, r);
        goto out;
    }
    for (int i = 0; i < 4; ++i)
        if ((r = sd_bus_message_skip(reply, "au")) < 0) goto parse_error;
    uint64_t own_pidns = 0;
    char ns_lines[8][96];
    int n_ns = 0;
    if ((r = sd_bus_message_enter_container(reply, 'a', "{st}")) < 0) goto parse_error;
    while ((r = sd_bus_message_enter_container(reply, 'e', "st")) > 0) {
        const char *type = NULL;
        uint64_t id = 0;
        if ((r = sd_bus_message_read(reply, "st", &type, &id)) < 0) goto parse_error;
        if (strcmp(type, "pid") == 0) own_pidns = id;
        if (n_ns < 8) snprintf(ns_lines[n_ns++], sizeof ns_lines[0], "namespace %s: %" PRIu64, type, id);
        if ((r = sd_bus_message_exit_container(reply)) < 0) goto parse_error;
    }
    if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0) goto parse_error;

    uint64_t target = to_given ? to : own_pidns;
    uint32_t translated = 0;
    r = translate(bus, pid, from, target, &translated, &e);
    if (r < 0) {
        ret = report("TranslatePid", &e, r);
        goto out;
    }

    char where_from[64], where_to[64];
    if (from == 0)
        snprintf(where_from, sizeof where_from, "your pid namespace");
    else
        snprintf(where_from, sizeof where_from, "pid namespace %" PRIu64, from);
    if (!to_given)
        snprintf(where_to, sizeof where_to, "its own pid namespace %" PRIu64, target);
    else if (target == 0)
        snprintf(where_to, sizeof where_to, "your pid namespace");
    else
        snprintf(where_to, sizeof where_to, "pid namespace %" PRIu64, target);
    if (translated)
        printf("pid %" PRIu32 " in %s is pid %" PRIu32 " in %s\n", pid, where_from, translated, where_to);
    else
        printf("pid %" PRIu32 " in %s has no pid in %s\n", pid, where_from, where_to);
    printf("translated: %" PRIu32 "\n", translated);

    if ((r = sd_bus_message_rewind(reply, 1)) < 0) goto parse_error;
    static const char *const chains[] = {"NSpid", "NStgid", "NSpgid", "NSsid"};
    for (int i = 0; i < 4; ++i)
        if ((r = print_chain(reply, chains[i], NULL)) < 0) goto parse_error;
    for (int i = 0; i < n_ns; ++i) printf("%s\n", ns_lines[i]);

    /* Its pid namespace's entry (level, init, process count) from ListNamespaces("pid"). */
    r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, INTERFACE, "ListNamespaces", &e, &list, "s", "pid");
    if (r < 0) {
        ret = report("ListNamespaces", &e, r);
        goto out;
    }
    if ((r = sd_bus_message_enter_container(list, 'a', "(ttsttuuuu)")) < 0) goto parse_error;
    struct ns_entry n;
    while ((r = read_entry(list, &n)) > 0)
        if (n.id == own_pidns)
            printf("pid namespace: id %" PRIu64 " inode %" PRIu64 " level %" PRIu32 " init_pid %" PRIu32
                   " nprocs %" PRIu32 "\n",
                   n.id, n.inode, n.level, n.init_pid, n.nprocs);
    if (r < 0) goto parse_error;
    ret = EXIT_OK;
    goto out;

parse_error:
    fprintf(stderr, "pidns_translate: cannot parse the reply: %s\n", strerror(-r));
    ret = EXIT_FAIL;
out:
    sd_bus_message_unref(list);
    sd_bus_message_unref(reply);
    sd_bus_error_free(&e);
    return ret;
}

static int list_namespaces(sd_bus *bus, const char *type) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    sd_bus_message *reply = NULL;
    int ret = EXIT_FAIL, r;
    r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, INTERFACE, "ListNamespaces", &e, &reply, "s", type);
    if (r < 0) {
        ret = report("ListNamespaces", &e, r);
        goto out;
    }
    if ((r = sd_bus_message_enter_container(reply, 'a', "(ttsttuuuu)")) < 0) goto parse_error;
    printf("%12s %12s %-6s %12s %12s %5s %8s %6s %9s\n", "ID", "INODE", "TYPE", "PARENT", "OWNER", "LEVEL", "INIT",
           "NPROCS", "OWNER-UID");
    struct ns_entry n;
    unsigned count = 0;
    while ((r = read_entry(reply, &n)) > 0) {
        printf("%12" PRIu64 " %12" PRIu64 " %-6s %12" PRIu64 " %12" PRIu64 " %5" PRIu32 " %8" PRIu32 " %6" PRIu32
               " %9" PRIu32 "\n",
               n.id, n.inode, n.type, n.parent, n.owner, n.level, n.init_pid, n.nprocs, n.owner_uid);
        ++count;
    }
    if (r < 0) goto parse_error;
    printf("%u namespaces\n", count);
    ret = EXIT_OK;
    goto out;
parse_error:
    fprintf(stderr, "pidns_translate: cannot parse the reply: %s\n", strerror(-r));
out:
    sd_bus_message_unref(reply);
    sd_bus_error_free(&e);
    return ret;
}

/* --monitor */
static void stamp(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, size, "%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ld", ts.tv_nsec / 1000000);
}

static int on_namespace(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
    (void)userdata;
    (void)ret_error;
    uint64_t id = 0;
    const char *type = NULL;
    char ts[32];
    stamp(ts, sizeof ts);
    if (sd_bus_message_read(m, "ts", &id, &type) < 0) return 0;
    printf("%s %s %" PRIu64 " %s\n", ts, sd_bus_message_get_member(m), id, type);
    fflush(stdout);
    return 0;
}

static int on_resync(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
    (void)m;
    (void)userdata;
    (void)ret_error;
    char ts[32];
    stamp(ts, sizeof ts);
    printf("%s Resync: changes were dropped; list again\n", ts);
    fflush(stdout);
    return 0;
}

static int monitor(sd_bus *bus, double seconds) {
    sd_event *event = NULL;
    sd_bus_error e = SD_BUS_ERROR_NULL;
    int ret = EXIT_FAIL, r;

    if ((r = sd_event_default(&event)) < 0 || (r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL)) < 0)
        goto fail;
    /* The signals are unicast to subscribers; the matches only route them to these handlers. */
    if ((r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJECT_PATH, INTERFACE, "NamespaceAdded", on_namespace, NULL)) < 0 ||
        (r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJECT_PATH, INTERFACE, "NamespaceRemoved", on_namespace, NULL)) < 0 ||
        (r = sd_bus_match_signal(bus, NULL, BUS_NAME, OBJECT_PATH, INTERFACE, "Resync", on_resync, NULL)) < 0)
        goto fail;
    r = sd_bus_call_method(bus, BUS_NAME, OBJECT_PATH, INTERFACE, "Subscribe", &e, NULL, "");
    if (r < 0) {
        ret = report("Subscribe", &e, r);
        goto out;
    }
    printf("subscribed; watching for %g s\n", seconds);
    fflush(stdout);
    uint64_t now = 0;
    if ((r = sd_event_now(event, CLOCK_MONOTONIC, &now)) < 0) goto fail;
    /* A timer that ends the loop (NULL callback: sd_event_exit with the userdata as code). */
    if ((r = sd_event_add_time(event, NULL, CLOCK_MONOTONIC, now + (uint64_t)(seconds * 1e6), 0, NULL,
                               (void *)(intptr_t)EXIT_OK)) < 0)
        goto fail;
    r = sd_event_loop(event);
    if (r < 0) goto fail;
    ret = r;
    goto out;
fail:
    fprintf(stderr, "pidns_translate: monitor: %s\n", strerror(-r));
out:
    sd_bus_error_free(&e);
    sd_bus_detach_event(bus);
    sd_event_unref(event);
    return ret;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: pidns_translate [--address ADDR] [--from NS] [--to NS] PID\n"
            "       pidns_translate [--address ADDR] --list [TYPE]\n"
            "       pidns_translate [--address ADDR] --monitor SECONDS\n");
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"address", required_argument, NULL, 'a'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},      {"list", optional_argument, NULL, 'l'},
        {"monitor", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *address = NULL, *list_type = NULL;
    uint64_t from = 0, to = 0;
    bool to_given = false, list = false;
    double seconds = -1;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'a': address = optarg; break;
        case 'f':
            if (parse_u64(optarg, &from) < 0) goto bad;
            break;
        case 't':
            if (parse_u64(optarg, &to) < 0) goto bad;
            to_given = true;
            break;
        case 'l':
            list = true;
            list_type = optarg;
            break;
        case 'm': {
            char *end = NULL;
            seconds = strtod(optarg, &end);
            if (*end != '\0' || !(seconds >= 0) || seconds > 1e6) goto bad;
            break;
        }
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    /* --list TYPE: getopt only takes an optional argument written as --list=TYPE. */
    if (list && !list_type && optind < argc) list_type = argv[optind++];
    uint64_t pid = 0;
    const int modes = (list ? 1 : 0) + (seconds >= 0 ? 1 : 0) + (optind < argc ? 1 : 0);
    if (modes != 1 || argc - optind > 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (optind < argc && (parse_u64(argv[optind], &pid) < 0 || pid > UINT32_MAX)) goto bad;

    sd_bus *bus = NULL;
    int r = connect_bus(address, &bus);
    if (r < 0) {
        fprintf(stderr, "pidns_translate: cannot connect to %s: %s\n", address ? address : "the system bus",
                strerror(-r));
        return EXIT_FAIL;
    }
    int ret;
    if (list)
        ret = list_namespaces(bus, list_type ? list_type : "");
    else if (seconds >= 0)
        ret = monitor(bus, seconds);
    else
        ret = show_process(bus, (uint32_t)pid, from, to_given, to);
    sd_bus_flush_close_unref(bus);
    return ret;

bad:
    fprintf(stderr, "pidns_translate: an argument is not a valid number\n");
    usage(stderr);
    return EXIT_USAGE;
}
