// webserver3j.cpp: one process, an event loop.
//
// Step j of the workshop. Step i's workers each serve one client at a time:
// N clients that connect and send nothing hold every worker, and the next
// client waits. Here one process serves every client, and never waits for
// any one of them. Its sockets are non-blocking, and epoll, Linux's event
// notification interface, tells it which of them are ready: the listening
// socket when a client connects, a connection when its request has arrived
// (or its client has gone). The loop handles those and waits again. No
// fork(), no child: hundreds of idle clients cost a descriptor each, not a
// process. (epoll is Linux's own; BSD and macOS have kqueue. See README.md.)

#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
static bool handle_request(int client_connection);
[[noreturn]] static void fatal(const char *call);
static void warn(const char *call);
static char *put(char *to, std::string_view text);
static char *put_number(char *to, long number);
static char *escape_request(std::string_view request, char *to);
static ssize_t send_all(int fd, std::string_view data);
static int create_listen_socket(const Options &options);

// Make the calls on fd return at once, failing with EAGAIN, rather than wait.
// One process serves every client: a call that waited for one client would
// keep all the others waiting.
static void set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
        fatal("fcntl");
}

static int accept_connection(int listen_socket)
{
    // The listening socket is non-blocking. epoll said that a connection was
    // waiting, but accept(2) warns that it may be gone by now (removed by a
    // network error): accept() then fails with EAGAIN (EWOULDBLOCK on some
    // systems) rather than wait for the next client, and the loop carries on.
    // It never waits, so no signal can interrupt it (EINTR).
    int client_connection = accept(listen_socket, nullptr, nullptr);
    if (client_connection == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        fatal("accept");
    }
    return client_connection;
}

// Ask epoll to report when fd is readable: a connection waiting to be
// accepted on the listening socket, a request (or the end of the connection)
// on a client's.
static void watch(int epoll_fd, int fd)
{
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) == -1)
        fatal("epoll_ctl");
}

[[noreturn]] static void serve_forever(const Options &options)
{
    int listen_socket = create_listen_socket(options);
    set_nonblocking(listen_socket);
    int epoll_fd = epoll_create1(0);
    if (epoll_fd == -1)
        fatal("epoll_create1");
    watch(epoll_fd, listen_socket);

    for (;;) {
        // Wait until something is ready: the one place where the server
        // waits for its clients. epoll_wait() fails with EINTR when a signal
        // handler runs (none is installed here), and on Linux also after the
        // process was stopped and continued (Ctrl-Z and fg, kill -STOP and
        // -CONT), handler or not (signal(7)): nothing went wrong, wait again.
        epoll_event events[64];
        int ready = epoll_wait(epoll_fd, events, 64, -1);
        if (ready == -1) {
            if (errno == EINTR)
                continue;
            fatal("epoll_wait");
        }
        for (int i = 0; i < ready; ++i) {
            int fd = events[i].data.fd;
            if (fd == listen_socket) {
                // A new client: watch its connection too. The new socket is
                // blocking (Linux's accept() does not copy the listening
                // socket's O_NONBLOCK; accept(2)): make it non-blocking.
                int client_connection = accept_connection(listen_socket);
                if (client_connection == -1)
                    continue;  // The connection was gone.
                set_nonblocking(client_connection);
                watch(epoll_fd, client_connection);
            } else if (handle_request(fd)) {
                // Answered, or the client has gone. Closing the descriptor
                // also takes it off epoll's list (epoll(7)): no other copy of
                // it exists, since this process never forks.
                if (close(fd) == -1)
                    fatal("close");
            }
        }
    }
}

// A status line, a blank line and the body. There is no Content-Length header,
// so a client knows that the body is complete only when the server closes the
// connection.
static const std::string_view HTTP_RESPONSE = "HTTP/1.1 200 OK\r\n\r\nHello, World!\n";

// Read the request that epoll said has arrived, print it, and answer. Return
// true when the connection is done with (answered, or closed or reset by its
// client), false when there was nothing to read after all: keep waiting.
static bool handle_request(int client_connection)
{
    // One recv(), as in the article: it returns what has arrived so far, at
    // most 1024 bytes. curl's short request usually arrives whole; the rest
    // of a longer one, or of one sent in pieces, is never read.
    char request[1024];
    ssize_t n = recv(client_connection, request, sizeof request, 0);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return false;  // A false alarm: nothing to read yet.
        warn("recv");
        return true;
    }
    if (n == 0)
        return true;  // The client closed the connection without sending anything.

    // Print with one write() from a buffer on the stack, not through stdio:
    // nothing stays behind in stdio's buffer, to be flushed later (or, in steps
    // c to i, copied into a child by fork()). When stdout is a pipe, POSIX
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

    // The connection is non-blocking, so send() fails with EAGAIN rather than
    // wait when the socket's send buffer is full. This answer is the first
    // and only data on the connection, and its 33 bytes fit in the smallest
    // send buffer that Linux allows (2048 bytes, socket(7)): it is sent whole.
    if (send_all(client_connection, HTTP_RESPONSE) == -1)
        warn("send");
    return true;
}

// ---------------------------------------------------------------------------
// The plumbing.

// Report the system call that just failed and exit, as TLPI's errExit()
// does, in the format of perror(): "call: reason".
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
