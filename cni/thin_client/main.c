/* netsched-cni, the node-side executable of netsched-cni: a thin client that hands each
 * CNI invocation to the node daemon (`netsched-cni daemon`) over the Unix socket its
 * config names, and relays the daemon's answer and exit code.
 *
 * It does exactly what the Python thin client (cni/main.py, cni/client.py) does, as a
 * static executable: a node OS without python3 (Flatcar, Talos, Bottlerocket,
 * Container-Optimized OS) can run it. It is C because a runtime starts it for every ADD
 * and DEL: a Go program's own runtime start (threads, signal handlers) alone took longer
 * than the whole of this one (docs/benchmarks.md, "The native thin client"). The wire
 * format and every error are the Python client's; docs/cni.md describes them, and
 * tests/cni runs the kernel tests through both clients. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "json.h"
#include "sha256.h"

/* The CNI spec versions netsched-cni speaks (cni/versions.py). */
#define SPEC_VERSION "1.1.0"
#define VERSION_REPORT_TAIL \
    "\", \"supportedVersions\": [\"0.3.1\", \"0.4.0\", \"1.0.0\", \"1.1.0\"]}"
static const char *const supported_versions[] = {"0.3.1", "0.4.0", "1.0.0", "1.1.0"};

/* CNI error codes the client itself reports (cni/errors.py has the full list). */
enum { IO_FAILURE = 5, DECODE_FAILURE = 6, INVALID_CONFIG = 7, TRY_AGAIN_LATER = 11 };

/* A config with a prevResult is a few KiB; anything near 4 MiB is not a CNI message. */
#define MAX_MESSAGE_BYTES (4 * 1024 * 1024)
/* How long a connect waits for a place in a full listen backlog. */
#define CONNECT_TIMEOUT_S 10
/* Bounds each later step (send, each read), as the Python client's socket timeout does:
 * the runtime has its own deadline; this one only keeps a wedged daemon from hanging
 * ADD. Tests build with a short one (build.sh OUTPUT -DREPLY_TIMEOUT_S=1). */
#ifndef REPLY_TIMEOUT_S
#define REPLY_TIMEOUT_S 120
#endif
/* Where DELs that found no daemon wait for it, beside its socket. */
#define PENDING_DEL_DIR "pending-del"

/* The phrase `netsched-cni install` looks for before it removes the executable on
 * uninstall (cni/install.py: CLIENT_MARKER); the usage text carries it. */
#define IDENTITY "netsched-cni native thin client"
static const char usage[] =
    "usage: netsched-cni    a CNI plugin: CNI_* variables, config on stdin\n"
    "\n" IDENTITY ": forwards every call to `netsched-cni daemon` at the config's\n"
    "\"socket\" and answers VERSION itself. The daemon and the installer are the\n"
    "netsched image's `netsched-cni daemon` and `netsched-cni install`.\n";

extern char **environ;

/* -- answers --------------------------------------------------------------------------- */

/* The error document the runtime reads on stdout, in the field order and separators of
 * the Python client's (cni.errors.CNIError.to_json); exit code 1. */
static int fail(struct buffer *out, const struct buffer *version, int code, const char *msg,
                const char *details) {
    char number[16];
    put_str(out, "{\"cniVersion\": ");
    put_json_string(out, version->data, version->len);
    snprintf(number, sizeof number, "%d", code);
    put_str(out, ", \"code\": ");
    put_str(out, number);
    put_str(out, ", \"msg\": ");
    put_json_string(out, msg, strlen(msg));
    if (details != NULL && details[0] != '\0') {
        put_str(out, ", \"details\": ");
        put_json_string(out, details, strlen(details));
    }
    put_str(out, "}");
    return 1;
}

/* The VERSION result: in the requested version when supported, else the newest; byte for
 * byte what the Python client prints. */
static int version_report(struct buffer *out, const struct buffer *requested) {
    const char *version = SPEC_VERSION;
    for (size_t i = 0; i < sizeof supported_versions / sizeof *supported_versions; i++)
        if (requested->len == strlen(supported_versions[i]) &&
            memcmp(requested->data, supported_versions[i], requested->len) == 0)
            version = supported_versions[i];
    put_str(out, "{\"cniVersion\": \"");
    put_str(out, version);
    put_str(out, VERSION_REPORT_TAIL);
    return 0;
}

/* text quoted as Python's repr quotes an ordinary string ('…'), so messages read the same
 * from both clients; anything unusual in it is escaped between double quotes. */
static void put_quoted(struct buffer *out, const char *text, size_t n) {
    size_t plain = 0;
    while (plain < n && text[plain] >= 0x20 && text[plain] < 0x7f && text[plain] != '\'' &&
           text[plain] != '\\')
        plain++;
    if (plain == n) {
        put(out, "'", 1);
        put(out, text, n);
        put(out, "'", 1);
        return;
    }
    put(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        char escaped[8];
        if (c == '"' || c == '\\')
            snprintf(escaped, sizeof escaped, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            snprintf(escaped, sizeof escaped, "\\x%02x", c);
        else
            snprintf(escaped, sizeof escaped, "%c", c);
        put_str(out, escaped);
    }
    put(out, "\"", 1);
}

/* -- the exchange with the daemon ------------------------------------------------------ */

/* "<op> <path>: <reason>" into details, the reason "i/o timeout" when a deadline passed
 * (SO_SNDTIMEO/SO_RCVTIMEO make a call fail with EAGAIN); always false. */
static bool system_error(struct buffer *details, const char *op, const char *path, int error) {
    put_str(details, op);
    put_str(details, " ");
    put_str(details, path);
    put_str(details, ": ");
    put_str(details, error == EAGAIN ? "i/o timeout" : strerror(error));
    return false;
}

static bool set_timeout(int fd, int option, int seconds) {
    struct timeval deadline = {.tv_sec = seconds};
    return setsockopt(fd, SOL_SOCKET, option, &deadline, sizeof deadline) == 0;
}

/* A blocking connect with CONNECT_TIMEOUT_S as its deadline (SO_SNDTIMEO), as the Python
 * client's: with the daemon's listen backlog full (many pods at once) it waits for a
 * place, where a non-blocking connect fails at once with EAGAIN. Then one request, a
 * half-close, and the reply read to its end, each step bounded by REPLY_TIMEOUT_S. */
static bool exchange(const char *path, const struct buffer *request, struct buffer *reply,
                     struct buffer *details) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t path_len = strlen(path);
    if (path_len > sizeof address.sun_path) /* exactly full needs no NUL on Linux */
        return system_error(details, "connect", path, ENAMETOOLONG);
    memcpy(address.sun_path, path, path_len);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return system_error(details, "socket", path, errno);
    bool ok = false;
    int error;
    if (!set_timeout(fd, SO_SNDTIMEO, CONNECT_TIMEOUT_S)) {
        system_error(details, "setsockopt", path, errno);
        goto done;
    }
    socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
    while ((error = connect(fd, (struct sockaddr *)&address, length) ? errno : 0) == EINTR)
        continue;
    if (error) {
        system_error(details, "connect", path, error);
        goto done;
    }
    if (!set_timeout(fd, SO_SNDTIMEO, REPLY_TIMEOUT_S) ||
        !set_timeout(fd, SO_RCVTIMEO, REPLY_TIMEOUT_S)) {
        system_error(details, "setsockopt", path, errno);
        goto done;
    }
    for (size_t sent = 0; sent < request->len;) {
        /* MSG_NOSIGNAL: a daemon gone mid-request is an error to report, not a SIGPIPE */
        ssize_t n = send(fd, request->data + sent, request->len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR) {
            system_error(details, "write", path, errno);
            goto done;
        }
        sent += n > 0 ? (size_t)n : 0;
    }
    if (shutdown(fd, SHUT_WR) != 0) {
        system_error(details, "shutdown", path, errno);
        goto done;
    }
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            system_error(details, "read", path, errno);
            goto done;
        }
        if (n == 0) /* the end of the answer; none at all: the daemon went away first */
            break;
        put(reply, chunk, (size_t)n);
        if (reply->len > MAX_MESSAGE_BYTES) {
            snprintf(chunk, sizeof chunk, "more than %d bytes", MAX_MESSAGE_BYTES);
            put_str(details, chunk);
            goto done;
        }
    }
    if (reply->len == 0)
        put_str(details, "closed without an answer");
    ok = reply->len > 0;
done:
    close(fd);
    return ok;
}

/* -- the DEL hand-off ------------------------------------------------------------------ */

/* os.makedirs(directory, 0o700, exist_ok=True): each missing directory on the way. */
static bool make_directories(char *directory, struct buffer *details) {
    struct stat seen;
    for (char *slash = directory + 1;; slash++) {
        if (*slash != '/' && *slash != '\0')
            continue;
        char kept = *slash;
        *slash = '\0';
        if (mkdir(directory, 0700) != 0 && errno != EEXIST)
            return system_error(details, "mkdir", directory, errno);
        *slash = kept;
        if (kept == '\0')
            break;
    }
    if (stat(directory, &seen) != 0)
        return system_error(details, "stat", directory, errno);
    if (!S_ISDIR(seen.st_mode))
        return system_error(details, "mkdir", directory, ENOTDIR);
    return true;
}

/* Leaves a DEL request for the daemon in pending-del/ beside its socket, under the
 * request's SHA-256 (a repeated DEL writes the same file), written under a temporary name
 * first so the daemon never reads half of it (docs/cni.md, "The thin client's protocol";
 * cni.client.hand_off is the Python client's). */
static bool hand_off(const char *socket_path, const struct buffer *request,
                     struct buffer *details) {
    struct buffer path = {0}, temporary = {0};
    char digest[65], pid[24];
    const char *slash = strrchr(socket_path, '/');
    /* os.path.dirname: up to the last slash, trailing slashes dropped unless all slashes */
    size_t head = slash ? (size_t)(slash - socket_path) + 1 : 0;
    while (head > 1 && socket_path[head - 1] == '/')
        head--;
    if (head == 0)
        put_str(&path, ".");
    put(&path, socket_path, head);
    if (path.data[path.len - 1] != '/')
        put_str(&path, "/");
    put_str(&path, PENDING_DEL_DIR);
    bool ok = make_directories(path.data, details);
    if (ok) {
        sha256_hex(request->data, request->len, digest);
        put_str(&path, "/");
        put_str(&path, digest);
        put_str(&path, ".json");
        snprintf(pid, sizeof pid, ".%ld.tmp", (long)getpid());
        put(&temporary, path.data, path.len);
        put_str(&temporary, pid);
        int fd = open(temporary.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok = fd >= 0 || system_error(details, "open", temporary.data, errno);
        for (size_t written = 0; ok && written < request->len;) {
            ssize_t n = write(fd, request->data + written, request->len - written);
            if (n < 0 && errno != EINTR)
                ok = system_error(details, "write", temporary.data, errno);
            written += n > 0 ? (size_t)n : 0;
        }
        ok = ok && (fsync(fd) == 0 || system_error(details, "fsync", temporary.data, errno));
        ok = (fd < 0 || close(fd) == 0 || system_error(details, "close", temporary.data, errno))
             && ok;
        ok = ok && (rename(temporary.data, path.data) == 0 ||
                    system_error(details, "rename", temporary.data, errno));
        if (!ok && fd >= 0)
            unlink(temporary.data);
    }
    free(path.data);
    free(temporary.data);
    return ok;
}

/* -- one invocation -------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) {
    const char *left = *(const char *const *)a, *right = *(const char *const *)b;
    size_t left_len = strcspn(left, "="), right_len = strcspn(right, "=");
    int order = memcmp(left, right, left_len < right_len ? left_len : right_len);
    return order ? order : (left_len > right_len) - (left_len < right_len);
}

/* The daemon's request (cni.daemon.parse_request): {"env": {every CNI_* variable, the
 * first of a repeated name, by name}, "config": "<stdin>"}. */
static void build_request(struct buffer *request, const struct buffer *config) {
    size_t count = 0, kept = 0;
    while (environ[count] != NULL)
        count++;
    const char **names = calloc(count + 1, sizeof *names);
    if (names == NULL) {
        fputs("netsched-cni: out of memory\n", stderr);
        exit(1);
    }
    for (size_t i = 0; i < count; i++) {
        const char *entry = environ[i];
        bool seen = false;
        if (strncmp(entry, "CNI_", 4) != 0 || strchr(entry, '=') == NULL)
            continue;
        for (size_t j = 0; j < kept && !seen; j++)
            seen = by_name(&names[j], &entry) == 0;
        if (!seen)
            names[kept++] = entry;
    }
    qsort(names, kept, sizeof *names, by_name);
    put_str(request, "{\"env\":{");
    for (size_t i = 0; i < kept; i++) {
        const char *equals = strchr(names[i], '=');
        if (i)
            put_str(request, ",");
        put_json_string(request, names[i], (size_t)(equals - names[i]));
        put_str(request, ":");
        put_json_string(request, equals + 1, strlen(equals + 1));
    }
    put_str(request, "},\"config\":");
    put_json_string(request, config->data, config->len);
    put_str(request, "}");
    free(names);
}

/* Has the daemon at socket_path run the invocation: its exit code and stdout, or the
 * error the runtime gets instead. No daemon there (it may be restarting: the runtime
 * retries) is TRY_AGAIN_LATER, except for a DEL, which is handed off to the daemon's next
 * start and succeeds; an answer that is not one is IO_FAILURE. */
static int forward(const char *socket_path, const struct buffer *config,
                   const struct buffer *version, const char *command, struct buffer *out) {
    struct buffer request = {0}, reply = {0}, details = {0}, msg = {0}, stdout_text = {0};
    static const char *const reply_keys[] = {"exitCode", "stdout"};
    struct span fields[2];
    long long code = 0;
    int exit_code;
    build_request(&request, config);
    if (!exchange(socket_path, &request, &reply, &details)) {
        if (strcmp(command, "DEL") == 0) {
            details.len = 0; /* the hand-off's error, if any, says more than the socket's */
            details.data[0] = '\0';
            if (hand_off(socket_path, &request, &details)) {
                exit_code = 0;
                goto done;
            }
        }
        put_str(&msg, "socket: no netsched-cni daemon answers at ");
        put_quoted(&msg, socket_path, strlen(socket_path));
        exit_code = fail(out, version, TRY_AGAIN_LATER, msg.data, details.data);
    } else if (json_members(reply.data, reply.len, reply_keys, fields, 2) &&
               json_int(fields[0], &code) && json_string(fields[1], &stdout_text)) {
        put(out, stdout_text.data, stdout_text.len);
        exit_code = (int)code; /* the status is its low byte, as for Python's sys.exit */
    } else {
        put_str(&msg, "socket: the daemon at ");
        put_quoted(&msg, socket_path, strlen(socket_path));
        put_str(&msg, " sent no valid reply");
        put_quoted(&details, reply.data, reply.len < 200 ? reply.len : 200);
        exit_code = fail(out, version, IO_FAILURE, msg.data, details.data);
    }
done:
    free(request.data);
    free(reply.data);
    free(details.data);
    free(msg.data);
    free(stdout_text.data);
    return exit_code;
}

/* One plugin invocation of the config on stdin: exit code, and stdout into out. */
static int invoke(const struct buffer *config, struct buffer *out) {
    static const char *const config_keys[] = {"cniVersion", "socket"};
    struct buffer requested = {0}, socket_path = {0}, spec = {0};
    struct span fields[2];
    const char *command = getenv("CNI_COMMAND");
    /* JSON is UTF-8, and the daemon's request carries the config as a string */
    bool utf8 = utf8_valid(config->data, config->len);
    bool object = utf8 && json_members(config->data, config->len, config_keys, fields, 2);
    bool has_version = object && json_string(fields[0], &requested);
    bool has_socket = object && json_string(fields[1], &socket_path);
    const struct buffer *version = has_version && requested.len ? &requested : &spec;
    int code;
    put_str(&spec, SPEC_VERSION);
    put_str(&requested, "");
    if (command != NULL && strcmp(command, "VERSION") == 0)
        code = version_report(out, &requested);
    else if (!utf8)
        code = fail(out, &spec, DECODE_FAILURE, "config is not UTF-8 JSON",
                    "invalid UTF-8 on stdin");
    else if (!has_socket)
        code = fail(out, version, INVALID_CONFIG,
                    "socket: not set, and this netsched-cni only forwards to the daemon",
                    "the " IDENTITY " has no in-process mode");
    else if (memchr(socket_path.data, '\0', socket_path.len) != NULL)
        code = fail(out, version, TRY_AGAIN_LATER,
                    "socket: no netsched-cni daemon answers at a path with a NUL byte",
                    "connect: a Unix socket path ends at its first NUL");
    else
        code = forward(socket_path.data, config, version, command ? command : "", out);
    free(requested.data);
    free(socket_path.data);
    free(spec.data);
    return code;
}

static void write_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t written = write(fd, data, n);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return; /* the runtime stopped reading: nothing left to tell it */
        data += written;
        n -= (size_t)written;
    }
}

int main(int argc, char **argv) {
    if (argc > 1) { /* a runtime passes no arguments; a person asking gets the usage */
        bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;
        write_all(help ? 1 : 2, usage, sizeof usage - 1);
        return help ? 0 : 2;
    }
    struct buffer config = {0}, out = {0}, spec = {0};
    char chunk[65536];
    int code = 0;
    bool read_all = false;
    put_str(&config, "");
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            put_str(&spec, SPEC_VERSION);
            code = fail(&out, &spec, IO_FAILURE, "stdin: cannot read the config", strerror(errno));
            break;
        }
        if ((read_all = n == 0))
            break;
        put(&config, chunk, (size_t)n);
    }
    if (read_all)
        code = invoke(&config, &out);
    if (out.len) {
        put_str(&out, "\n");
        write_all(1, out.data, out.len);
    }
    free(config.data);
    free(out.data);
    free(spec.data);
    return code;
}
