// webserver3i.cpp: a pool of worker processes, forked once.
//
// Step i of the workshop. Steps c to h fork a child for every connection,
// and the child exits when it has answered: a fork() and an exit for every
// request. Here the parent forks --workers N children (4 by default) once, at
// the start. Each worker loops as step a did: accept a connection on the
// listening socket that they all share, answer it, close it, and accept the
// next. The kernel hands each new connection to one of the workers waiting in
// accept(). The parent only waits for a worker to die, and starts another in
// its place: N + 1 processes, however many clients come.

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

struct Options {
    const char *host = "127.0.0.1";  // The article binds all interfaces; see README.md.
    in_addr address{};               // host, converted by parse_options()
    int port = 8888;
    int workers = 4;  // The size of the pool: how many clients are served at once.
};

// The lesson comes first, from here to handle_request(). The plumbing that it
// calls (error reports, escaping, the listening socket, the command line) is
// defined at the end of the file.
static void handle_request(int client_connection);
[[noreturn]] static void fatal(const char *call);
static void warn(const char *call);
static char *put(char *to, std::string_view text);
static char *put_number(char *to, long number);
static char *escape_request(std::string_view request, char *to);
static ssize_t send_all(int fd, std::string_view data);
static int create_listen_socket(const Options &options);

static int accept_connection(int listen_socket)
{
    // A worker installs no signal handler, so no handler can interrupt
    // accept() (EINTR). Any error is fatal to the worker, which reports it
    // and exits (see serve_forever() for what the parent does then).
    int client_connection = accept(listen_socket, nullptr, nullptr);
    if (client_connection == -1)
        fatal("accept");
    return client_connection;
}

// Fork one worker. In the parent, return; the worker never returns: it
// serves one client after another, for as long as it lives.
static void start_worker(int listen_socket)
{
    pid_t pid = fork();
    if (pid == -1)
        fatal("fork");
    if (pid > 0)
        return;  // The parent: fork() returned the worker's PID.

    // The worker keeps the listening socket: accepting is its job. Several
    // processes may wait in accept() on the same socket; the kernel gives
    // each new connection to one of them.
    for (;;) {
        int client_connection = accept_connection(listen_socket);
        handle_request(client_connection);
        if (close(client_connection) == -1)
            fatal("close");
    }
}

[[noreturn]] static void serve_forever(const Options &options)
{
    int listen_socket = create_listen_socket(options);
    // Flush each line at once: fork() gives the child a copy of stdout's
    // buffer, and a line left in it would be printed again by a child that
    // calls exit() (fatal() does), and by the parent only when it fills.
    std::printf("Parent PID (PPID): %ld\n\n", static_cast<long>(getpid()));
    std::fflush(stdout);
    for (int i = 0; i < options.workers; ++i)
        start_worker(listen_socket);

    // The parent never accepts; it waits for a worker to terminate. wait()
    // blocks, and that is all the parent has to do, so it needs no SIGCHLD
    // handler (nor the workers, which have no children): nothing interrupts
    // wait() with EINTR, and each dead worker is collected at once.
    for (;;) {
        int status;
        pid_t pid = wait(&status);
        if (pid == -1)
            fatal("wait");
        std::printf("Child %ld terminated with status %d\n", static_cast<long>(pid), status);
        std::fflush(stdout);
        // A worker killed by a signal (kill -9, the kernel's out-of-memory
        // killer) is replaced: the pool stays N strong. A worker that exited
        // on its own has reported a fatal error on stderr (out of descriptors,
        // say), and a new one would most likely meet the same error at once:
        // it is not replaced, rather than forked again and again. When no
        // worker is left, wait() fails with ECHILD, and the server exits with
        // "wait: No child processes".
        if (WIFSIGNALED(status))
            start_worker(listen_socket);
    }
}

// A status line, a blank line and the body. There is no Content-Length header,
// so a client knows that the body is complete only when the server closes the
// connection.
static const std::string_view HTTP_RESPONSE = "HTTP/1.1 200 OK\r\n\r\nHello, World!\n";

static void handle_request(int client_connection)
{
    // One recv(), as in the article: it returns what has arrived so far, at
    // most 1024 bytes. curl's short request usually arrives whole; the rest
    // of a longer one, or of one sent in pieces, is never read.
    char request[1024];
    ssize_t n = recv(client_connection, request, sizeof request, 0);
    if (n == -1) {
        warn("recv");
        return;
    }
    if (n == 0)
        return;  // The client closed the connection without sending anything.

    // Print with one write() from a buffer on the stack, not through stdio:
    // nothing stays behind in stdio's buffer, to be flushed later (or, from
    // step c on, copied into a child by fork()). When stdout is a pipe, POSIX
    // keeps a write() of at most PIPE_BUF bytes (4096 on Linux) in one piece,
    // never mixed with other processes' output; a longer one may be split.
    // 80 bytes hold the first line (from step c on: two numbers of at most 20
    // characters each), and 4 bytes each byte of the request, escaped.
    char shown[80 + 4 * sizeof request + 1];
    char *end = shown;
    end = put(end, "Child PID: ");
    end = put_number(end, getpid());
    end = put(end, ". Parent PID ");
    end = put_number(end, getppid());
    end = put(end, "\n");
    end = escape_request(std::string_view(request, static_cast<std::size_t>(n)), end);
    end = put(end, "\n");
    if (write(STDOUT_FILENO, shown, static_cast<std::size_t>(end - shown)) == -1)
        warn("write");

    if (send_all(client_connection, HTTP_RESPONSE) == -1)
        warn("send");
}

// ---------------------------------------------------------------------------
// The plumbing.

// Report the system call that just failed and exit, as TLPI's errExit()
// does, in the format of perror(): "call: reason".
// (In a child, exit() flushes the stdio buffers it inherited: harmless,
// because the parent flushes each line as it prints it.)
[[noreturn]] static void fatal(const char *call)
{
    std::fprintf(stderr, "%s: %s\n", call, std::strerror(errno));
    std::exit(EXIT_FAILURE);
}

// Report a failure that concerns one client only; the server carries on.
static void warn(const char *call)
{
    std::fprintf(stderr, "%s: %s\n", call, std::strerror(errno));
}

// Copy text to `to` and return the end of the copy. A plain loop, which
// cannot throw (string_view::copy() can) and takes no lock: the SIGCHLD
// handler of steps e to g uses it too.
static char *put(char *to, std::string_view text)
{
    for (char c : text)
        *to++ = c;
    return to;
}

// Write number (a PID or a wait status: never negative) in decimal to `to`
// and return the end. A plain digit loop, not std::to_chars(): C++17 does
// not list to_chars() among the functions that a signal handler may call,
// and the SIGCHLD handler of steps e to g uses this too.
static char *put_number(char *to, long number)
{
    char digits[20];  // The last digit first; a long has at most 19.
    int count = 0;
    do {
        digits[count++] = static_cast<char>('0' + number % 10);
        number /= 10;
    } while (number != 0);
    while (count > 0)
        *to++ = digits[--count];
    return to;
}

// A request is untrusted input: printed raw, its bytes could drive the
// terminal (clear it, move the cursor, change its title). Keep printable ASCII
// and line breaks; show every other byte, and the backslash, escaped. Write
// the result to `to`, at most 4 bytes for each byte of the request, and
// return its end.
static char *escape_request(std::string_view request, char *to)
{
    static const char hex_digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < request.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(request[i]);
        if (c == '\r' && i + 1 < request.size() && request[i + 1] == '\n')
            continue;  // HTTP ends lines with CRLF; print it as a plain line break.
        if (c == '\\') {
            to = put(to, "\\\\");
        } else if (c == '\n' || (c >= 0x20 && c < 0x7f)) {
            *to++ = static_cast<char>(c);
        } else {
            const char hex[] = {'\\', 'x', hex_digits[c >> 4], hex_digits[c & 0xf]};
            to = put(to, std::string_view(hex, sizeof hex));
        }
    }
    return to;
}

// send() may take fewer bytes than offered; keep going until all are sent.
static ssize_t send_all(int fd, std::string_view data)
{
    std::size_t sent = 0;
    while (sent < data.size()) {
        ssize_t n = send(fd, data.data() + sent, data.size() - sent, 0);
        if (n == -1)
            return -1;
        sent += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(sent);
}

// The backlog: on Linux, how many connections that have finished the TCP
// handshake the kernel keeps queued until the server accept()s them.
// listen() silently caps it at net.core.somaxconn (4096 since Linux 5.4, 128
// before; 128 on macOS).
static const int REQUEST_QUEUE_SIZE = 1024;  // The article's from step f on: a burst of 128 fits.

static int create_listen_socket(const Options &options)
{
    int listen_socket = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_socket == -1)
        fatal("socket");

    // Let a restarted server bind its port at once, even while connections
    // of its previous run are still in TIME_WAIT.
    int on = 1;
    if (setsockopt(listen_socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
        fatal("setsockopt");

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(options.port));
    address.sin_addr = options.address;
    if (bind(listen_socket, reinterpret_cast<sockaddr *>(&address), sizeof address) == -1)
        fatal("bind");
    if (listen(listen_socket, REQUEST_QUEUE_SIZE) == -1)
        fatal("listen");

    // With --port 0 the kernel chose the port; ask it which one.
    socklen_t length = sizeof address;
    if (getsockname(listen_socket, reinterpret_cast<sockaddr *>(&address), &length) == -1)
        fatal("getsockname");
    std::printf("Serving HTTP on port %d ...\n", ntohs(address.sin_port));
    std::fflush(stdout);
    return listen_socket;
}

// The command line, read by getopt_long() as Unix tools read theirs.
static void usage(std::FILE *stream, const char *program)
{
    std::fprintf(stream,
                 "Usage: %s [OPTION]...\n"
                 "  --port N         TCP port to listen on, 0 to let the kernel choose (default 8888)\n"
                 "  --host ADDR      IPv4 address to bind (default 127.0.0.1; 0.0.0.0 for all)\n"
                 "  --workers N      worker processes, from 1 to 1024 (default 4)\n"
                 "  --help           show this help\n",
                 program);
}

[[noreturn]] static void bad_usage(const char *program, const char *problem, const char *what)
{
    std::fprintf(stderr, "%s: %s: %s\n", program, problem, what);
    usage(stderr, program);
    std::exit(2);
}

// The end of the decimal digits that text starts with.
static const char *skip_digits(const char *text)
{
    while (*text >= '0' && *text <= '9')
        ++text;
    return text;
}

// An option's value, in plain decimal: digits and, where fractions are
// allowed, a point and more digits (0.5); from 0 to max. Nothing else: no
// sign, no space, no hex, no exponent, no inf or nan, all of which strtod()
// alone would take (--port 0x50 would then be port 80).
static double parse_number(const char *program, const char *text, double max, bool fractions, const char *problem)
{
    const char *end = skip_digits(text);
    if (fractions && end != text && *end == '.' && skip_digits(end + 1) != end + 1)
        end = skip_digits(end + 1);
    if (end == text || *end != '\0')
        bad_usage(program, problem, text);
    // Only digits and a point are left for strtod() to read (in the C locale,
    // which this program never changes). A number too large for a double
    // reads as HUGE_VAL, more than max.
    double number = std::strtod(text, nullptr);
    if (number > max)
        bad_usage(program, problem, text);
    return number;
}

// The most workers that --workers allows. The pool serves that many clients
// at once, one each; 1024 is far more than any lesson here needs, and serving
// thousands of clients at once is step j's lesson, not a job for thousands of
// processes. A larger number is more likely a slip (40000 for 4) than a plan,
// and would fill the user's process limit (ulimit -u) with idle workers.
static const int MAX_WORKERS = 1024;

static Options parse_options(int argc, char *argv[])
{
    const char *program = argv[0];
    // Long options only, each with a code that no option letter can be (1,
    // 2, ...), so that optopt (below) tells an unknown short option apart.
    enum { PORT = 1, HOST, HELP, WORKERS };
    const option long_options[] = {
        {"port", required_argument, nullptr, PORT},
        {"host", required_argument, nullptr, HOST},
        {"workers", required_argument, nullptr, WORKERS},
        {"help", no_argument, nullptr, HELP},
        {nullptr, 0, nullptr, 0},
    };
    Options options;
    // The leading ':' keeps getopt_long() quiet, so that the messages are
    // this program's own, and makes a missing value ':'.
    int opt;
    while ((opt = getopt_long(argc, argv, ":", long_options, nullptr)) != -1) {
        switch (opt) {
        case PORT:
            options.port = static_cast<int>(parse_number(program, optarg, 65535, false, "invalid port"));
            break;
        case HOST:
            options.host = optarg;
            break;
        case WORKERS:
            // From 1: parse_number() takes 0, and a pool of none serves nobody.
            options.workers =
                static_cast<int>(parse_number(program, optarg, MAX_WORKERS, false, "invalid number of workers"));
            if (options.workers == 0)
                bad_usage(program, "invalid number of workers", optarg);
            break;
        case HELP:
            usage(stdout, program);
            std::exit(EXIT_SUCCESS);
        case ':':
            bad_usage(program, "missing value for", argv[optind - 1]);
        default:  // '?': an option it does not know.
            // An unknown short option is named by its letter, which
            // getopt_long() leaves in optopt: in -xy, the argument just read
            // is not yet the one that holds x. A long one leaves 0 there, or
            // its code for a value it does not take (--help=1): name the
            // argument as typed.
            if (std::isgraph(static_cast<unsigned char>(optopt)) != 0) {
                const char letter[] = {'-', static_cast<char>(optopt), '\0'};
                bad_usage(program, "unknown option", letter);
            }
            bad_usage(program, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage(program, "unexpected argument", argv[optind]);

    // The address to bind, in numbers and dots (127.0.0.1, 0.0.0.0).
    if (inet_pton(AF_INET, options.host, &options.address) != 1)
        bad_usage(program, "invalid address", options.host);
    return options;
}

int main(int argc, char *argv[])
{
    Options options = parse_options(argc, argv);

    // A client that has gone must not kill the process that answers it:
    // without this, send() on its connection may raise SIGPIPE, whose
    // default action ends the process. (signal() is portable for SIG_IGN;
    // what varies between systems is how it installs a handler.)
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal("signal");

    serve_forever(options);
}
