// client3.cpp: the workshop's forking load client.
//
// Forks --max-clients children. Each child opens --max-conns connections to
// the server, one after another, sends a small HTTP request on each, and
// waits for the first bytes of the server's answer: only then has the server
// surely accepted the connection, and only then does the connection count as
// made. It keeps them all open and prints each connection's number; then it
// exits, which closes all of its connections at once. The parent waits for
// every child (so that the client leaves no zombie of its own), prints a
// one-line summary and exits with status 0 only if every connection was made.
//
// Usage: client3 [--max-clients N] [--max-conns M] [--host HOST] [--port PORT]
//                [--timeout SECONDS]

#include <fcntl.h>
#ifdef __linux__
#include <linux/sockios.h>  // SIOCOUTQ
#endif
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
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
    long max_conns = 1;  // The article's runs made one connection per child; see README.md.
    std::string host = "localhost";
    int port = 8888;
    double timeout = 5.0;  // Seconds a connection may take to be answered.
};

// What a child tells the parent, through a pipe. A child writes one record
// per kind of failure it met, then a last one (done) with the connections it
// made. Each record is smaller than PIPE_BUF, so each write() arrives whole
// even when many children write at once.
struct Report {
    long made = 0;
    long failed = 0;
    bool done = false;
    char reason[96] = {};  // "connect: Connection refused", "no answer within 5s", ...
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

double now()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Wait until fd is ready for `events`, or until the deadline (a now() time).
// Returns poll()'s result: 1 ready, 0 at the deadline, -1 on error.
//
// It looks at the socket at least once, even when the deadline has already
// passed. On a busy machine a process can wait for a processor for longer
// than it meant to wait for the socket (children of client3 were measured
// waiting 0.17 s between connect() and poll()), and its clock then says "too
// late" about a connection that was made long before. The socket's state,
// not the clock, says whether it is ready.
int wait_until(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - now();
        int milliseconds = left > 0 ? static_cast<int>(std::ceil(left * 1000)) : 0;
        pollfd entry{fd, events, 0};
        int ready = poll(&entry, 1, milliseconds);
        if (ready == -1 && errno == EINTR)
            continue;
        if (ready != 0 || left <= 0)
            return ready;
    }
}

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

std::string seconds(double value)
{
    char text[32];
    std::snprintf(text, sizeof text, "%gs", value);
    return text;
}

// How many bytes of the request the server's kernel has not acknowledged yet,
// or 0 where the system cannot tell. Used only to name a failure.
long unacknowledged(int fd)
{
#ifdef SIOCOUTQ
    int bytes = 0;
    if (ioctl(fd, SIOCOUTQ, &bytes) == 0)
        return bytes;
#else
    (void)fd;
#endif
    return 0;
}

// One attempt: connect, send the request, and wait for the first bytes of
// the answer. Returns "" once answered; "retry" when the handshake has not
// completed by `give_up` (the server's kernel dropped its first packet, SYN,
// because the listen queue was full); otherwise why the connection failed.
std::string attempt(const Options &options, const sockaddr_storage &server, socklen_t server_length,
                    const std::string &request, Descriptor &connection, double give_up, double deadline)
{
    connection = Descriptor(socket(server.ss_family, SOCK_STREAM, 0));
    const int fd = connection.get();
    if (fd == -1)
        return std::string("socket: ") + std::strerror(errno);

    // A non-blocking connect(), so that it too waits no longer than asked.
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
        return std::string("fcntl: ") + std::strerror(errno);
    if (connect(fd, reinterpret_cast<const sockaddr *>(&server), server_length) == -1) {
        if (errno != EINPROGRESS)
            return std::string("connect: ") + std::strerror(errno);
        int ready = wait_until(fd, POLLOUT, give_up);
        if (ready == -1)
            return std::string("poll: ") + std::strerror(errno);
        if (ready == 0)  // Still connecting: the server's kernel dropped our SYN.
            return "retry";
        int error = 0;
        socklen_t length = sizeof error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == -1)
            return std::string("getsockopt: ") + std::strerror(errno);
        if (error != 0)
            return std::string("connect: ") + std::strerror(error);
    }
    if (fcntl(fd, F_SETFL, flags) == -1)
        return std::string("fcntl: ") + std::strerror(errno);

    // From here on the handshake is complete, and the connection may already
    // wait in the server's listen queue, where nothing the client does can
    // take it back: a connection that the client resets or closes is still
    // accept()ed, and the server's recv() then fails with ECONNRESET (or
    // reads an end of file). So the connection is never abandoned early: it
    // waits for the answer until the deadline. If the server's kernel did
    // drop the handshake's last packet (its queue filled up between our SYN
    // and our ACK), our kernel sends the request again after its
    // retransmission timeout (0.2 s on loopback, then doubling), and the
    // server's kernel takes the connection with the first copy that finds
    // room in its queue.
    if (!send_all(fd, request))
        return std::string("send: ") + std::strerror(errno);
    int ready = wait_until(fd, POLLIN, deadline);
    if (ready == -1)
        return std::string("poll: ") + std::strerror(errno);
    if (ready == 0 && unacknowledged(fd) > 0)  // The server's kernel never took the request.
        return "not accepted within " + seconds(options.timeout) + " (listen queue full)";
    if (ready == 0)  // The server's kernel holds it, but the server did not answer.
        return "no answer within " + seconds(options.timeout);
    char answer[512];
    ssize_t n;
    do
        n = recv(fd, answer, sizeof answer, 0);
    while (n == -1 && errno == EINTR);
    if (n == -1)
        return std::string("recv: ") + std::strerror(errno);
    if (n == 0)
        return "closed without an answer";
    return "";
}

// Open one connection, send the request and wait for the first bytes of the
// answer, all within options.timeout seconds. Returns "" once the server has
// answered (the connection is then in `connection`), or why it failed.
//
// Why wait for the answer: connect() succeeds as soon as the kernel has
// finished the handshake, and when the listen queue (the backlog, 5 in steps
// a to e) is full, the server's kernel drops handshakes, or even the last
// packet of one while the client believes it is connected. Only an answer
// proves that the server accept()ed the connection. The first bytes are
// enough: step d's server answers but never closes, and the connection must
// stay open.
//
// Why try again: when the listen queue is full, Linux drops the handshake's
// first packet (SYN), and the client's kernel sends it again only 1, 3 and 7
// seconds after the first; a burst of hundreds of clients against a queue of
// 5 would wait out many such rounds. So an attempt whose handshake has not
// completed within a fraction of a second is closed and made again at once.
// Only such an attempt: until the handshake completes, the server's kernel
// holds at most a half-open request that it never hands to accept(), so the
// server cannot see the attempt at all.
std::string open_connection(const Options &options, const sockaddr_storage &server, socklen_t server_length,
                            const std::string &request, Descriptor &connection, unsigned &seed)
{
    const double deadline = now() + options.timeout;
    double patience = 0.1;
    for (;;) {
        // Spread the attempts of many children out a little (0.5 to 1.5
        // times the patience), so that they do not all come back at once.
        double spread = 0.5 + static_cast<double>(rand_r(&seed)) / RAND_MAX;
        double give_up = std::min(now() + patience * spread, deadline);
        std::string failure = attempt(options, server, server_length, request, connection, give_up, deadline);
        if (failure != "retry")
            return failure;
        // A plain close(), not a reset (SO_LINGER 0): on a socket that is
        // still connecting, Linux then sends nothing at all, and if the
        // server's answer to our SYN arrives later, our kernel, finding no
        // socket, answers it with a reset that makes the server's kernel
        // forget the half-open request. And should the handshake complete in
        // the instant between poll() and close(), the connection ends with
        // an orderly FIN, which a server reads as an end of file, not as an
        // error; a reset would make its recv() fail.
        connection = Descriptor(-1);
        if (now() >= deadline)
            return "not accepted within " + seconds(options.timeout) + " (listen queue full)";
        patience = std::min(patience * 1.5, 1.0);
    }
}

void write_report(int report_fd, const Report &report)
{
    if (write(report_fd, &report, sizeof report) == -1)
        std::fprintf(stderr, "write: %s\n", std::strerror(errno));
}

// Open max_conns connections and hold them; report to the parent through
// report_fd. Runs in a child process and never returns.
[[noreturn]] void run_child(const Options &options, const sockaddr_storage &server, socklen_t server_length,
                            int report_fd)
{
    const std::string request =
        "GET /hello HTTP/1.1\r\nHost: " + options.host + ":" + std::to_string(options.port) + "\r\n\r\n";
    unsigned seed = static_cast<unsigned>(getpid());
    long made = 0;
    std::map<std::string, long> failures;  // Why, and how many times.
    std::vector<Descriptor> connections;
    connections.reserve(static_cast<std::size_t>(options.max_conns));

    for (long number = 0; number < options.max_conns; ++number) {
        Descriptor connection(-1);
        std::string failure = open_connection(options, server, server_length, request, connection, seed);
        if (!failure.empty()) {
            if (failures.empty())  // Show the first failure of this child as it happens.
                std::fprintf(stderr, "%s\n", failure.c_str());
            ++failures[failure];
            continue;
        }
        ++made;
        connections.push_back(std::move(connection));
        std::printf("%ld\n", number);
    }

    // Flush before _exit(), which would throw away what is left in the buffer.
    std::fflush(stdout);
    for (const auto &[failure, count] : failures) {
        Report report;
        report.failed = count;
        std::snprintf(report.reason, sizeof report.reason, "%s", failure.c_str());
        write_report(report_fd, report);
    }
    Report last;
    last.made = made;
    last.done = true;
    write_report(report_fd, last);
    // _exit() closes every connection at once. It skips the destructors and
    // the exit handlers that the child inherited from the parent.
    _exit(EXIT_SUCCESS);
}

void usage(std::FILE *stream, const char *program)
{
    std::fprintf(stream,
                 "Usage: %s [--max-clients N] [--max-conns M] [--host HOST] [--port PORT] [--timeout SECONDS]\n"
                 "  --max-clients N    child processes to fork (default 1)\n"
                 "  --max-conns M      connections each child opens and holds (default 1)\n"
                 "  --host HOST        server's IPv4 address or host name (default localhost)\n"
                 "  --port PORT        server's port (default 8888)\n"
                 "  --timeout SECONDS  how long a connection may wait for the server's answer\n"
                 "                     before it counts as failed; fractions allowed (default 5)\n"
                 "  --help             show this help\n",
                 program);
}

[[noreturn]] void bad_usage(const char *program, const char *problem, std::string_view what)
{
    std::fprintf(stderr, "%s: %s: %.*s\n", program, problem, static_cast<int>(what.size()), what.data());
    usage(stderr, program);
    std::exit(2);
}

// The end of the decimal digits that text starts with.
const char *skip_digits(const char *text)
{
    while (*text >= '0' && *text <= '9')
        ++text;
    return text;
}

// A whole number in plain decimal, from low to high: digits only (strtol()
// alone would also take a sign and leading blanks: --port " 80").
long parse_number(const char *program, const char *text, long low, long high)
{
    if (skip_digits(text) == text || *skip_digits(text) != '\0')
        bad_usage(program, "invalid number", text);
    errno = 0;
    long number = std::strtol(text, nullptr, 10);
    if (errno != 0 || number < low || number > high)
        bad_usage(program, "invalid number", text);
    return number;
}

// Seconds in plain decimal, a fraction allowed (0.5): digits, then a point
// and more digits; more than 0 and at most an hour. Nothing else (strtod()
// alone would take signs, blanks, hex, exponents, inf and nan).
double parse_seconds(const char *program, const char *text)
{
    const char *end = skip_digits(text);
    if (end != text && *end == '.' && skip_digits(end + 1) != end + 1)
        end = skip_digits(end + 1);
    if (end == text || *end != '\0')
        bad_usage(program, "invalid number of seconds", text);
    double number = std::strtod(text, nullptr);  // Only digits and a point: the C locale reads them.
    if (!(number > 0) || number > 3600)
        bad_usage(program, "invalid number of seconds", text);
    return number;
}

Options parse_options(int argc, char *argv[])
{
    const char *program = argv[0];
    enum { MAX_CLIENTS = 1, MAX_CONNS, HOST, PORT, TIMEOUT, HELP };
    static const option long_options[] = {
        {"max-clients", required_argument, nullptr, MAX_CLIENTS},
        {"max-conns", required_argument, nullptr, MAX_CONNS},
        {"host", required_argument, nullptr, HOST},
        {"port", required_argument, nullptr, PORT},
        {"timeout", required_argument, nullptr, TIMEOUT},
        {"help", no_argument, nullptr, HELP},
        {nullptr, 0, nullptr, 0},
    };
    Options options;
    // The leading ':' makes getopt_long() quiet and return ':' for a missing
    // value, so that every problem is reported here, in one format.
    opterr = 0;
    int choice;
    while ((choice = getopt_long(argc, argv, ":", long_options, nullptr)) != -1) {
        switch (choice) {
        case MAX_CLIENTS:
            options.max_clients = parse_number(program, optarg, 1, 100000);
            break;
        case MAX_CONNS:
            options.max_conns = parse_number(program, optarg, 1, 1000000);
            break;
        case HOST:
            if (*optarg == '\0')
                bad_usage(program, "empty host", optarg);
            options.host = optarg;
            break;
        case PORT:
            options.port = static_cast<int>(parse_number(program, optarg, 1, 65535));
            break;
        case TIMEOUT:
            options.timeout = parse_seconds(program, optarg);
            break;
        case HELP:
            usage(stdout, program);
            std::exit(EXIT_SUCCESS);
        case ':':
            bad_usage(program, "missing value for", argv[optind - 1]);
        default:  // '?': an option it does not know.
            // An unknown short option is named by its letter, which
            // getopt_long() leaves in optopt; a long one leaves 0 there, or its
            // code for a value it does not take (--help=1): name the argument
            // as typed.
            if (std::isgraph(static_cast<unsigned char>(optopt)) != 0) {
                const char letter[] = {'-', static_cast<char>(optopt), '\0'};
                bad_usage(program, "unknown option", letter);
            }
            bad_usage(program, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage(program, "unexpected argument", argv[optind]);
    return options;
}

// The local ports that connect() may choose from. Every connection to one
// server address and port needs a port of its own, held while it is open
// and, when the client closes first, for a while after (TIME_WAIT, 60
// seconds on Linux).
struct PortRange {
    long low = 49152;  // IANA's range (RFC 6335), macOS's default.
    long high = 65535;
    const char *source = "IANA's ephemeral range, assumed";
};

PortRange local_port_range()
{
    PortRange range;
    if (std::FILE *file = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
        char line[64];
        if (std::fgets(line, sizeof line, file) != nullptr) {
            char *end = nullptr;
            long low = std::strtol(line, &end, 10);
            long high = std::strtol(end, &end, 10);
            if (0 < low && low <= high) {
                range.low = low;
                range.high = high;
                range.source = "/proc/sys/net/ipv4/ip_local_port_range";
            }
        }
        std::fclose(file);
    }
    return range;
}

// Refuse, before anything starts, a run that the machine cannot carry: one
// that would use up the local ports (and with them every other program's
// connections, for minutes), or one whose children cannot hold their
// connections open under the open-files limit.
void refuse_impossible_runs(const Options &options, const char *program)
{
    const PortRange range = local_port_range();
    const long ports = range.high - range.low + 1;
    const long allowed = ports / 2;  // The other half stays free for everyone else.
    const long wanted = options.max_clients * options.max_conns;
    if (wanted > allowed) {
        std::fprintf(stderr,
                     "%s: refused: %ld clients x %ld connections need %ld local ports, and client3 takes at most "
                     "%ld,\n"
                     "half of this machine's %ld (%ld-%ld, from %s): the other half stays\n"
                     "free for other programs, and for connections that the client closed first, waiting out "
                     "TIME_WAIT (60 s on Linux).\n"
                     "Use fewer --max-clients or --max-conns.\n",
                     program, options.max_clients, options.max_conns, wanted, allowed, ports, range.low, range.high,
                     range.source);
        std::exit(2);
    }
    rlimit files;
    const long spare = 8;  // stdin, stdout, stderr, the report pipe, and a margin.
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY &&
        static_cast<rlim_t>(options.max_conns + spare) > files.rlim_cur) {
        std::fprintf(stderr,
                     "%s: refused: each child holds %ld connections open, but the open-files limit "
                     "(ulimit -n) is %ld. Use a smaller --max-conns and more --max-clients.\n",
                     program, options.max_conns, static_cast<long>(files.rlim_cur));
        std::exit(2);
    }
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

// Read the children's reports until every child has closed the pipe. Adds
// each failure to `errors`, counts the children that reported, and returns
// the connections made.
long collect_reports(int report_fd, std::map<std::string, long> &errors, long &reports)
{
    long made = 0;
    Report report;
    for (;;) {
        ssize_t n = read(report_fd, &report, sizeof report);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            fatal("read");
        }
        if (n == 0)
            return made;
        if (n != static_cast<ssize_t>(sizeof report)) {
            std::fprintf(stderr, "read: short report from a child (%zd bytes)\n", n);
            std::exit(EXIT_FAILURE);
        }
        report.reason[sizeof report.reason - 1] = '\0';
        made += report.made;
        if (report.failed > 0)
            errors[report.reason] += report.failed;
        if (report.done)
            ++reports;
    }
}

}  // namespace

int main(int argc, char *argv[])
{
    const Options options = parse_options(argc, argv);
    refuse_impossible_runs(options, argv[0]);
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
    // "connect: Connection refused" -> how many connections it cost.
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

    // The parent closes its own write end first, or it would wait forever.
    if (close(report_pipe[1]) == -1)
        fatal("close");
    long reports = 0;
    const long made = collect_reports(report_pipe[0], errors, reports);

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
