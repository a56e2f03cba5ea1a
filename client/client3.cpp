// client3.cpp: the workshop's forking load client.
//
// Forks --max-clients children. Each child opens --max-conns connections to
// the server, one after another, sends a small HTTP request on each, keeps
// them all open and prints each connection's number; then it exits, which
// closes all of its connections at once. The parent waits for every child
// (so that the client leaves no zombie of its own), prints a one-line summary
// and exits with status 0 only if every connection was made.
//
// Usage: client3 [--max-clients N] [--max-conns M] [--host HOST] [--port PORT]

#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct Options {
    long max_clients = 1;
    long max_conns = 1024;
    std::string host = "localhost";
    int port = 8888;
};

// What a child tells the parent, through a pipe, when it is done. The record
// is smaller than PIPE_BUF, so each child's write() arrives whole even when
// many children write at once.
struct Report {
    long made = 0;
    long failed = 0;
    char call[16] = {};  // The call that failed first ("connect"), if any.
    int error = 0;       // Its errno.
};
static_assert(sizeof(Report) <= 512, "a report must be written atomically (PIPE_BUF >= 512)");

[[noreturn]] void fatal(const char *call)
{
    std::fprintf(stderr, "%s: %s\n", call, std::strerror(errno));
    std::exit(EXIT_FAILURE);
}

// A descriptor that closes itself. The child keeps its connections in a
// vector of these, and they all close together when the child exits.
class Descriptor {
  public:
    explicit Descriptor(int fd) : fd_(fd) {}
    Descriptor(Descriptor &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Descriptor &operator=(Descriptor &&other) noexcept
    {
        std::swap(fd_, other.fd_);
        return *this;
    }
    Descriptor(const Descriptor &) = delete;
    Descriptor &operator=(const Descriptor &) = delete;
    ~Descriptor()
    {
        if (fd_ != -1)
            close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

bool send_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = send(fd, data.data(), data.size(), 0);
        if (n == -1)
            return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Open max_conns connections and hold them; report to the parent through
// report_fd. Runs in a child process and never returns.
[[noreturn]] void run_child(const Options &options, const sockaddr_storage &server, socklen_t server_length,
                            int report_fd)
{
    const std::string request =
        "GET /hello HTTP/1.1\r\nHost: " + options.host + ":" + std::to_string(options.port) + "\r\n\r\n";
    Report report;
    std::vector<Descriptor> connections;
    connections.reserve(static_cast<std::size_t>(options.max_conns));

    for (long number = 0; number < options.max_conns; ++number) {
        const char *failed_call = nullptr;
        Descriptor connection(socket(server.ss_family, SOCK_STREAM, 0));
        if (connection.get() == -1)
            failed_call = "socket";
        else if (connect(connection.get(), reinterpret_cast<const sockaddr *>(&server), server_length) == -1)
            failed_call = "connect";
        else if (!send_all(connection.get(), request))
            failed_call = "send";

        if (failed_call != nullptr) {
            if (report.failed++ == 0) {  // Name the first failure of this child.
                std::snprintf(report.call, sizeof report.call, "%s", failed_call);
                report.error = errno;
                std::fprintf(stderr, "%s: %s\n", failed_call, std::strerror(errno));
            }
            continue;
        }
        ++report.made;
        connections.push_back(std::move(connection));
        std::printf("%ld\n", number);
    }

    // Flush before _exit(), which would throw away what is left in the buffer.
    std::fflush(stdout);
    if (write(report_fd, &report, sizeof report) == -1)
        std::fprintf(stderr, "write: %s\n", std::strerror(errno));
    // _exit() closes every connection at once. It skips the destructors and
    // the exit handlers that the child inherited from the parent.
    _exit(EXIT_SUCCESS);
}

void usage(std::FILE *stream, const char *program)
{
    std::fprintf(stream,
                 "Usage: %s [--max-clients N] [--max-conns M] [--host HOST] [--port PORT]\n"
                 "  --max-clients N  child processes to fork (default 1)\n"
                 "  --max-conns M    connections each child opens and holds (default 1024)\n"
                 "  --host HOST      server's IPv4 address or name (default localhost)\n"
                 "  --port PORT      server's port (default 8888)\n"
                 "  --help           show this help\n",
                 program);
}

[[noreturn]] void bad_usage(const char *program, const char *problem, std::string_view what)
{
    std::fprintf(stderr, "%s: %s: %.*s\n", program, problem, static_cast<int>(what.size()), what.data());
    usage(stderr, program);
    std::exit(2);
}

long parse_number(const char *program, const char *text, long low, long high)
{
    char *end;
    errno = 0;
    long number = std::strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || number < low || number > high)
        bad_usage(program, "invalid number", text);
    return number;
}

Options parse_options(int argc, char *argv[])
{
    const char *program = argv[0];
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help") {
            usage(stdout, program);
            std::exit(EXIT_SUCCESS);
        }
        // Each other option takes a value, as "--port 8080" or "--port=8080".
        std::string_view name = arg.substr(0, arg.find('='));
        if (name != "--max-clients" && name != "--max-conns" && name != "--host" && name != "--port")
            bad_usage(program, "unknown option", arg);
        const char *value = nullptr;
        if (name.size() < arg.size())
            value = argv[i] + name.size() + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            bad_usage(program, "missing value for", name);

        if (name == "--max-clients")
            options.max_clients = parse_number(program, value, 1, 100000);
        else if (name == "--max-conns")
            options.max_conns = parse_number(program, value, 1, 1000000);
        else if (name == "--port")
            options.port = static_cast<int>(parse_number(program, value, 1, 65535));
        else if (*value == '\0')
            bad_usage(program, "empty host", value);
        else
            options.host = value;
    }
    return options;
}

// Resolve the server's address once, in the parent. The workshop's servers
// listen on IPv4, so ask for an IPv4 address ("localhost" is also ::1).
socklen_t resolve(const Options &options, sockaddr_storage &server)
{
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *found;
    const std::string port = std::to_string(options.port);
    int error = getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found);
    if (error != 0) {
        std::fprintf(stderr, "getaddrinfo: %s: %s\n", options.host.c_str(), gai_strerror(error));
        std::exit(EXIT_FAILURE);
    }
    std::memcpy(&server, found->ai_addr, found->ai_addrlen);
    socklen_t length = found->ai_addrlen;
    freeaddrinfo(found);
    return length;
}

// Collect every child, so that none stays behind as a zombie.
void wait_for_children(long forked)
{
    for (long waited = 0; waited < forked;) {
        int status;
        if (wait(&status) == -1) {
            if (errno == EINTR)
                continue;
            fatal("wait");
        }
        ++waited;
    }
}

}  // namespace

int main(int argc, char *argv[])
{
    const Options options = parse_options(argc, argv);
    // A server that hangs up early must not kill a child with SIGPIPE: let
    // send() fail with EPIPE instead, so that the failure is counted.
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal("signal");
    sockaddr_storage server{};
    const socklen_t server_length = resolve(options, server);

    int report_pipe[2];
    if (pipe(report_pipe) == -1)
        fatal("pipe");

    long forked = 0;
    // "connect: Connection refused" -> how many connections it cost. A child
    // names the first error it met, and the count is all of its failures.
    std::map<std::string, long> errors;
    for (; forked < options.max_clients; ++forked) {
        std::fflush(stdout);  // Else the children print the parent's buffer again.
        pid_t pid = fork();
        if (pid == -1) {
            // Keep what was started: wait for those children and report.
            errors[std::string("fork: ") + std::strerror(errno)] += options.max_conns * (options.max_clients - forked);
            break;
        }
        if (pid == 0) {
            close(report_pipe[0]);
            run_child(options, server, server_length, report_pipe[1]);
        }
    }

    // Read the children's reports until every child has closed the pipe
    // (the parent closes its own write end first, or it would wait forever).
    if (close(report_pipe[1]) == -1)
        fatal("close");
    long made = 0;
    long reports = 0;
    Report report;
    for (;;) {
        ssize_t n = read(report_pipe[0], &report, sizeof report);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            fatal("read");
        }
        if (n == 0)
            break;
        if (n != static_cast<ssize_t>(sizeof report)) {
            std::fprintf(stderr, "read: short report from a child (%zd bytes)\n", n);
            std::exit(EXIT_FAILURE);
        }
        ++reports;
        made += report.made;
        if (report.failed > 0)
            errors[std::string(report.call) + ": " + std::strerror(report.error)] += report.failed;
    }

    wait_for_children(forked);
    // A child that died before it could report cost all of its connections.
    if (reports < forked)
        errors["child died before reporting"] += (forked - reports) * options.max_conns;

    long total = options.max_clients * options.max_conns;
    std::printf("client3: %ld of %ld connections made, %ld failed", made, total, total - made);
    const char *separator = " [";
    for (const auto &[error, count] : errors) {
        std::printf("%s%s x%ld", separator, error.c_str(), count);
        separator = "; ";
    }
    std::printf("%s\n", errors.empty() ? "" : "]");
    return made == total ? EXIT_SUCCESS : EXIT_FAILURE;
}
