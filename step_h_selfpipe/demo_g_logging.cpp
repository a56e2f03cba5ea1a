// demo_g_logging.cpp: step g with the logging that a maintainer would add.
//
// Not a step: the demonstration of what goes wrong in step g that step h
// fixes (see step h's README.md). This is step g's server with two lines of
// logging printed with printf(): one per connection in the main loop, and one
// per child in the SIGCHLD handler, where printf() is not allowed (it is not
// async-signal-safe). Under a burst of clients, the handler runs in the middle
// of the loop's printf(), and the loop's line comes out twice. Built as
// webserver3g_logging; diff it against step_g_waitpid/webserver3g.cpp.

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
static void report_child(pid_t pid, int status);
static int create_listen_socket(const Options &options);

static int accept_connection(int listen_socket)
{
    // accept() fails with EINTR when the SIGCHLD handler ran while it was
    // blocked. Nothing went wrong: call it again. Any other error is fatal,
    // as in the article. (A server meant to last would also call it again
    // after ECONNABORTED, a connection reset before it was accepted: UNP
    // 5.11. Linux hands such a connection over instead; recv() sees the reset.)
    int client_connection;
    do {
        client_connection = accept(listen_socket, nullptr, nullptr);
    } while (client_connection == -1 && errno == EINTR);
    if (client_connection == -1)
        fatal("accept");
    return client_connection;
}

// The SIGCHLD handler. The kernel sends SIGCHLD to the parent when a child
// terminates, but a signal that arrives while the same signal is already
// pending is merged into it: one run of the handler may stand for many
// children. So collect every exited child. WNOHANG makes waitpid() return 0
// instead of blocking when the children left are all still running.
static void grim_reaper(int)
{
    // waitpid() sets errno when it fails (ECHILD when there is no child left).
    // Save errno and restore it: the code that this handler interrupted may
    // be just about to read it.
    int saved_errno = errno;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        report_child(pid, status);
    errno = saved_errno;
}

static void install_grim_reaper()
{
    struct sigaction action {};
    action.sa_handler = grim_reaper;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: a system call that the handler interrupts, accept()
    // here, then fails with EINTR instead of being restarted (man 7 signal).
    // Step e dies of it; from step f on, accept() is called again. Nor
    // signal(): whether it sets SA_RESTART is the C library's choice, and
    // glibc (for C++), musl, macOS and the BSDs do (Linux's own signal system
    // call does not). SA_NOCLDSTOP: no SIGCHLD when a child only stops (kill
    // -STOP) or resumes. There is nothing to collect then: waitpid() with
    // WNOHANG returns 0 (in steps e and f, wait() would block the server).
    action.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &action, nullptr) == -1)
        fatal("sigaction");
}

[[noreturn]] static void serve_forever(const Options &options)
{
    int listen_socket = create_listen_socket(options);
    // Flush each line at once: fork() gives the child a copy of stdout's
    // buffer, and a line left in it would be printed again by a child that
    // calls exit() (fatal() does), and by the parent only when it fills.
    std::printf("Parent PID (PPID): %ld\n\n", static_cast<long>(getpid()));
    std::fflush(stdout);
    install_grim_reaper();
    for (;;) {
        int client_connection = accept_connection(listen_socket);

        // fork() fails (EAGAIN) at the process limit, as step d shows. Fatal
        // here, as in the article; a server meant to last would close this
        // connection and carry on.
        pid_t pid = fork();
        if (pid == -1)
            fatal("fork");

        if (pid == 0) {  // The child: fork() returned 0.
            // The child never accepts; close its copy of the listening socket.
            if (close(listen_socket) == -1)
                fatal("close");
            handle_request(client_connection);
            if (close(client_connection) == -1)
                fatal("close");
            // _exit(), not exit(): the child must not flush stdio buffers or
            // run exit handlers that it inherited from the parent.
            _exit(EXIT_SUCCESS);
        }

        std::printf("Child %ld started\n", static_cast<long>(pid));
        std::fflush(stdout);
        // The parent: fork() returned the child's PID. Close the parent's copy
        // of the connection; the kernel keeps the connection open until the
        // child closes its copy too (descriptors are reference counted).
        if (close(client_connection) == -1)
            fatal("close");
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

// Report a child with printf(), as anywhere else in the program. In a signal
// handler this is the mistake: printf() is not async-signal-safe.
static void report_child(pid_t pid, int status)
{
    std::printf("Child %ld terminated with status %d\n", static_cast<long>(pid), status);
    std::fflush(stdout);
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

static Options parse_options(int argc, char *argv[])
{
    const char *program = argv[0];
    // Long options only, each with a code that no option letter can be (1,
    // 2, ...), so that optopt (below) tells an unknown short option apart.
    enum { PORT = 1, HOST, HELP };
    const option long_options[] = {
        {"port", required_argument, nullptr, PORT},
        {"host", required_argument, nullptr, HOST},
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
