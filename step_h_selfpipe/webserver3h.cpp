// webserver3h.cpp: the signal handler only takes note; the main loop reaps.
//
// Step h of the workshop, the first after the article. Step g's SIGCHLD
// handler does its work at whatever moment a child exits: every slow system
// call in the server must expect to fail with EINTR, and the handler may call
// only async-signal-safe functions (the printf() that a maintainer would add
// to it prints lines twice; see README.md). Here the handler only writes one
// byte into a pipe: the self-pipe trick. The main loop waits in poll() for
// the listening socket or that pipe; when the pipe has a byte, it collects
// every exited child and reports each one with printf(), as any code may.

#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
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
static char *escape_request(std::string_view request, char *to);
static ssize_t send_all(int fd, std::string_view data);
static int create_listen_socket(const Options &options);

// Make the calls on fd return at once, failing with EAGAIN, rather than wait
// (nonblocking true), or wait again (false).
static void set_nonblocking(int fd, bool nonblocking)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1)
        fatal("fcntl");
    flags = nonblocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (fcntl(fd, F_SETFL, flags) == -1)
        fatal("fcntl");
}

static int accept_connection(int listen_socket)
{
    // The listening socket is non-blocking. poll() said that a connection
    // was waiting, but accept(2) warns that it may be gone by now (removed by
    // a network error): a blocking accept() would then wait for the next
    // client, and exited children would stay zombies meanwhile. Here it fails
    // with EAGAIN (EWOULDBLOCK on some systems) instead, and the loop goes
    // back to poll(). It never waits, so no signal can interrupt it (EINTR).
    int client_connection = accept(listen_socket, nullptr, nullptr);
    if (client_connection == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        fatal("accept");
    }
    // Linux gives the new socket flags of its own, blocking; BSD and macOS
    // copy O_NONBLOCK from the listening socket (accept(2)). The child reads
    // and writes with blocking calls: say so rather than rely on either.
    set_nonblocking(client_connection, false);
    return client_connection;
}

// The self-pipe. The SIGCHLD handler writes into [1]; the main loop watches
// [0], next to the listening socket.
static int sigchld_pipe[2] = {-1, -1};

// The SIGCHLD handler. It runs between any two instructions of the main
// loop, even in the middle of a printf(), so it does the least it can: it
// notes that a child has exited by writing one byte into the pipe, with
// write(), which is async-signal-safe. It need not count the children:
// signals merge, and the main loop collects every exited child when it wakes.
static void note_child_exit(int)
{
    // write() sets errno when it fails. Save errno and restore it: the code
    // that this handler interrupted may be just about to read it.
    int saved_errno = errno;
    const char note = 'x';
    if (write(sigchld_pipe[1], &note, 1) == -1) {
        // The pipe is full: 64 KiB of notes that the loop has not read yet
        // (Linux's default pipe capacity). It is non-blocking, so write()
        // fails with EAGAIN at once rather than stop the server inside its
        // own handler for ever; and nothing is lost, because one note waiting
        // is enough to wake the loop, which then collects every child.
    }
    errno = saved_errno;
}

static void install_sigchld_handler()
{
    // Both ends non-blocking: the handler must never wait for room in the
    // pipe, nor the loop for a note that is not there.
    if (pipe(sigchld_pipe) == -1)
        fatal("pipe");
    set_nonblocking(sigchld_pipe[0], true);
    set_nonblocking(sigchld_pipe[1], true);

    struct sigaction action {};
    action.sa_handler = note_child_exit;
    sigemptyset(&action.sa_mask);
    // SA_RESTART now: the handler has nothing to tell the calls that it
    // interrupts, so the kernel may carry on with them. (Without it, a
    // printf() whose write() waits for a slow terminal or a full pipe would
    // fail with EINTR, and glibc's stdio drops what it had not written.)
    // poll() is the exception: Linux never restarts it after a handler,
    // whatever SA_RESTART says (signal(7)); it fails with EINTR, and the loop
    // calls it again. SA_NOCLDSTOP: no SIGCHLD for a child that is only
    // stopped (kill -STOP); there would be nothing to collect.
    action.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &action, nullptr) == -1)
        fatal("sigaction");
}

// The main loop calls this when the pipe has notes: collect every child that
// has exited, as step g's handler did. This is ordinary code, not a handler,
// so it reports each child with printf(), and may call anything else.
static void grim_reaper()
{
    // Empty the pipe first, then reap. A child that exits after the last
    // waitpid() below writes a new note, which wakes the next poll(). (Reaping
    // first and emptying the pipe afterwards could swallow that note, and
    // leave the child a zombie until another child exits.)
    char notes[64];
    ssize_t n;
    do {
        n = read(sigchld_pipe[0], notes, sizeof notes);
    } while (n > 0);
    if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
        fatal("read");

    // WNOHANG: return 0 instead of waiting when the children left are all
    // still running. waitpid() never waits, so it is never interrupted.
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        std::printf("Child %ld terminated with status %d\n", static_cast<long>(pid), status);
        std::fflush(stdout);
    }
}

[[noreturn]] static void serve_forever(const Options &options)
{
    int listen_socket = create_listen_socket(options);
    // Flush each line at once: fork() gives the child a copy of stdout's
    // buffer, and a line still in it would be lost or printed twice.
    std::printf("Parent PID (PPID): %ld\n\n", static_cast<long>(getpid()));
    std::fflush(stdout);
    set_nonblocking(listen_socket, true);  // See accept_connection().
    install_sigchld_handler();
    for (;;) {
        // Wait until a client connects or a child has exited, whichever
        // comes first. This is the one place where the server waits.
        pollfd ready[] = {{listen_socket, POLLIN, 0}, {sigchld_pipe[0], POLLIN, 0}};
        if (poll(ready, 2, -1) == -1) {
            // The handler ran while poll() waited. Nothing is lost: its note
            // is in the pipe, and the next poll() returns at once.
            if (errno == EINTR)
                continue;
            fatal("poll");
        }
        if (ready[1].revents != 0)
            grim_reaper();
        if (ready[0].revents == 0)
            continue;
        int client_connection = accept_connection(listen_socket);
        if (client_connection == -1)
            continue;  // The connection was gone.

        pid_t pid = fork();
        if (pid == -1)
            fatal("fork");

        if (pid == 0) {  // The child: fork() returned 0.
            // The child never accepts, and has no child of its own to reap:
            // close its copies of the listening socket and of the pipe.
            if (close(listen_socket) == -1 || close(sigchld_pipe[0]) == -1 || close(sigchld_pipe[1]) == -1)
                fatal("close");
            handle_request(client_connection);
            if (close(client_connection) == -1)
                fatal("close");
            // _exit(), not exit(): the child must not flush stdio buffers or
            // run exit handlers that it inherited from the parent.
            _exit(EXIT_SUCCESS);
        }

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
    char request[1024];
    ssize_t n = recv(client_connection, request, sizeof request, 0);
    if (n == -1) {
        warn("recv");
        return;
    }
    if (n == 0)
        return;  // The client closed the connection without sending anything.

    // Print with one write() from a buffer on the stack, not through stdio
    // nor the heap: the lines arrive together, and nothing is left to flush.
    // 80 bytes hold the first line (from step c on: two numbers of at most 20
    // characters each), and 4 bytes each byte of the request, escaped.
    char shown[80 + 4 * sizeof request + 1];
    char *end = shown;
    end = put(end, "Child PID: ");
    end = std::to_chars(end, end + 20, getpid()).ptr;
    end = put(end, ". Parent PID ");
    end = std::to_chars(end, end + 20, getppid()).ptr;
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

// Report the system call that just failed as "call: reason" and exit, as
// TLPI's errExit() does. (In a child, exit() flushes the stdio buffers it
// inherited: harmless, because the parent flushes each line as it prints it.)
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

// Copy text to `to` and return the end of the copy. A plain loop: it cannot
// throw (string_view::copy() can), and it calls nothing that the signal
// handler or a child would have to fault in.
static char *put(char *to, std::string_view text)
{
    for (char c : text)
        *to++ = c;
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

// The size of the kernel's queue of connections that have finished the TCP
// handshake but that the server has not accept()ed yet.
static const int REQUEST_QUEUE_SIZE = 1024;

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

// An option's value: a number from 0 to max, a whole one unless fractions are
// allowed; anything else is a usage error.
static double parse_number(const char *program, const char *text, double max, bool fractions, const char *problem)
{
    char *end;
    errno = 0;
    double number = std::strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(number >= 0 && number <= max) ||
        (!fractions && number != static_cast<double>(static_cast<long>(number))))
        bad_usage(program, problem, text);
    return number;
}

static Options parse_options(int argc, char *argv[])
{
    const char *program = argv[0];
    const option long_options[] = {
        {"port", required_argument, nullptr, 'p'},
        {"host", required_argument, nullptr, 'H'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    Options options;
    // Long options only. The leading ':' keeps getopt_long() quiet, so that
    // the messages are this program's own, and makes a missing value ':'.
    int opt;
    while ((opt = getopt_long(argc, argv, ":", long_options, nullptr)) != -1) {
        switch (opt) {
        case 'p':
            options.port = static_cast<int>(parse_number(program, optarg, 65535, false, "invalid port"));
            break;
        case 'H':
            options.host = optarg;
            break;
        case 'h':
            usage(stdout, program);
            std::exit(EXIT_SUCCESS);
        case ':':
            bad_usage(program, "missing value for", argv[optind - 1]);
        default:  // '?': an option it does not know.
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

    // A client that hangs up before the answer is sent must not kill the
    // server: without this, send() on its connection raises SIGPIPE.
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal("signal");

    serve_forever(options);
}
