// floor_server.cpp: the leanest fork-per-connection server, as a yardstick.
//
// `make bench` measures step g against this program. It does what step g
// does for each connection, and nothing more: accept, fork, one read, one
// write of the same response bytes, close, _exit. The parent reaps its
// children as step g does (a waitpid() loop with WNOHANG in a SIGCHLD handler
// installed without SA_RESTART, accept() restarted on EINTR), but says
// nothing about them. It prints only the first line, which the harness waits
// for, and takes one option, --port N, so that the harness can give it 0.
//
// The CPU time it spends per request is the floor for any server built this
// way: what is left is the cost of fork(), exit and the TCP connection.
//
// Usage: bench_floor_server [--port N]

#include <arpa/inet.h>
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

// The same bytes as the workshop's servers send: a status line, a blank line
// and the body, which ends when the connection closes.
static const char HTTP_RESPONSE[] = "HTTP/1.1 200 OK\r\n\r\nHello, World!\n";

// The same queue of finished handshakes as steps f and g.
static const int REQUEST_QUEUE_SIZE = 1024;

// Report the system call that just failed as "call: reason" and exit.
[[noreturn]] static void fatal(const char *call)
{
    std::fprintf(stderr, "%s: %s\n", call, std::strerror(errno));
    std::exit(EXIT_FAILURE);
}

// Collect every child that has exited: one SIGCHLD may stand for many. Save
// and restore errno, which waitpid() sets (to ECHILD) when no child is left,
// because the accept() that this handler interrupted is about to read it.
static void reap_children(int)
{
    int saved_errno = errno;
    while (waitpid(-1, nullptr, WNOHANG) > 0)
        continue;
    errno = saved_errno;
}

static void install_reaper()
{
    struct sigaction action {};
    action.sa_handler = reap_children;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART, as in step g: accept() fails with EINTR and is restarted
    // by hand, so both servers pay for the same system calls.
    action.sa_flags = 0;
    if (sigaction(SIGCHLD, &action, nullptr) == -1)
        fatal("sigaction");
}

// The one option: --port N, where 0 lets the kernel choose. Anything else is
// a usage error, as in the steps; but strtol() also takes leading blanks and
// a sign, which the steps refuse (the harness passes plain digits).
static int parse_port(int argc, char *argv[])
{
    if (argc == 1)
        return 8888;
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        char *end;
        errno = 0;
        long port = std::strtol(argv[2], &end, 10);
        if (errno == 0 && end != argv[2] && *end == '\0' && port >= 0 && port <= 65535)
            return static_cast<int>(port);
    }
    std::fprintf(stderr, "Usage: %s [--port N]\n", argv[0]);
    std::exit(2);
}

static int create_listen_socket(int port)
{
    int listen_socket = socket(AF_INET, SOCK_STREAM, 0);
    if (listen_socket == -1)
        fatal("socket");
    int on = 1;
    if (setsockopt(listen_socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
        fatal("setsockopt");

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_socket, reinterpret_cast<sockaddr *>(&address), sizeof address) == -1)
        fatal("bind");
    if (listen(listen_socket, REQUEST_QUEUE_SIZE) == -1)
        fatal("listen");

    // With --port 0 the kernel chose the port; the harness reads it here.
    socklen_t length = sizeof address;
    if (getsockname(listen_socket, reinterpret_cast<sockaddr *>(&address), &length) == -1)
        fatal("getsockname");
    std::printf("Serving HTTP on port %d ...\n", ntohs(address.sin_port));
    // Flush now: the harness waits for this line, and a child must not
    // inherit it unflushed.
    if (std::fflush(stdout) == EOF)
        fatal("fflush");
    return listen_socket;
}

// The child's whole work. Errors concern this one client only, and there is
// nobody to tell, so the child simply exits.
[[noreturn]] static void serve_one(int listen_socket, int client_connection)
{
    if (close(listen_socket) == -1)
        _exit(EXIT_FAILURE);
    char request[1024];
    if (read(client_connection, request, sizeof request) == -1)
        _exit(EXIT_FAILURE);
    if (write(client_connection, HTTP_RESPONSE, sizeof HTTP_RESPONSE - 1) == -1)
        _exit(EXIT_FAILURE);
    if (close(client_connection) == -1)
        _exit(EXIT_FAILURE);
    _exit(EXIT_SUCCESS);
}

int main(int argc, char *argv[])
{
    int listen_socket = create_listen_socket(parse_port(argc, argv));

    // A client that hangs up early must not kill a child with SIGPIPE.
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        fatal("signal");
    install_reaper();

    for (;;) {
        int client_connection = accept(listen_socket, nullptr, nullptr);
        if (client_connection == -1) {
            if (errno == EINTR)
                continue;  // The SIGCHLD handler ran; nothing went wrong.
            fatal("accept");
        }
        pid_t pid = fork();
        if (pid == -1)
            fatal("fork");
        if (pid == 0)
            serve_one(listen_socket, client_connection);
        // The parent closes its copy; the child's copy keeps the connection.
        if (close(client_connection) == -1)
            fatal("close");
    }
}
