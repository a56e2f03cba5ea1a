// Shared support for the unit tests: the system headers the step servers use,
// a descriptor that closes itself, and small helpers for sockets and children.
//
// Each unit test includes one step's own server source inside a namespace of
// its own (see step_a_test.cpp), so the tests exercise the very code the
// workshop shows, not a copy of it. The headers are included here first, at
// global scope; their include guards then keep them out of that namespace.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace support {

// A descriptor that closes itself.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd &operator=(Fd &&other) noexcept
    {
        std::swap(fd_, other.fd_);
        return *this;
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset()
    {
        if (fd_ != -1)
            close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

// A TCP socket listening on 127.0.0.1, on a port the kernel chooses.
inline Fd listening_socket(int *port)
{
    Fd listener(socket(AF_INET, SOCK_STREAM, 0));
    EXPECT_NE(listener.get(), -1) << std::strerror(errno);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener.get(), reinterpret_cast<sockaddr *>(&address), sizeof address), 0) << std::strerror(errno);
    EXPECT_EQ(listen(listener.get(), 5), 0) << std::strerror(errno);
    socklen_t length = sizeof address;
    EXPECT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr *>(&address), &length), 0);
    *port = ntohs(address.sin_port);
    return listener;
}

inline Fd connect_to(int port)
{
    Fd connection(socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (connect(connection.get(), reinterpret_cast<sockaddr *>(&address), sizeof address) == -1)
        return {};
    return connection;
}

// Does fd become readable (data or end of file) within timeout_ms?
inline bool readable_within(int fd, int timeout_ms)
{
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1;
}

// Read until end of file or until timeout_ms passes without data.
inline std::string read_all(int fd, int timeout_ms = 2000)
{
    std::string data;
    char buffer[4096];
    while (readable_within(fd, timeout_ms)) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0)
            break;
        data.append(buffer, static_cast<std::size_t>(n));
    }
    return data;
}

// Fork a child that sleeps for delay_ms and then _exit()s. The child does
// nothing else: a forked child must never return into the test runner.
inline pid_t fork_child_exiting_after(int delay_ms)
{
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        timespec delay{delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&delay, nullptr);
        _exit(0);
    }
    return pid;
}

// Fork a child that connects to port after delay_ms and then _exit()s. The
// connection stays in the listener's queue after the child is gone.
inline pid_t fork_child_connecting_after(int delay_ms, int port)
{
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        timespec delay{delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&delay, nullptr);
        Fd connection = connect_to(port);
        _exit(connection.get() == -1 ? 1 : 0);
    }
    return pid;
}

// Block until the child has exited, without collecting it: it stays a zombie.
inline void wait_until_zombie(pid_t pid)
{
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0) << std::strerror(errno);
}

// Collect every child that has exited; return how many there were.
inline int reap_exited_children()
{
    int reaped = 0;
    while (waitpid(-1, nullptr, WNOHANG) > 0)
        ++reaped;
    return reaped;
}

// Collect every child, waiting for those still running.
inline void reap_all_children()
{
    while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
}

// Block or unblock SIGCHLD for the calling thread.
inline void set_sigchld_blocked(bool blocked)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    ASSERT_EQ(sigprocmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr), 0);
}

// Start from SIGCHLD's default disposition, unblocked, whatever the launcher
// left: an ignored SIGCHLD is inherited across exec, and the kernel would then
// collect the tests' children itself, so no child would ever be a zombie.
inline const bool sigchld_default_at_start = []() noexcept {
    signal(SIGCHLD, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    return true;
}();

// Put SIGCHLD back to its default disposition after a test installed a handler.
class SigchldRestored : public ::testing::Test {
  protected:
    void TearDown() override
    {
        set_sigchld_blocked(false);
        struct sigaction action {};
        action.sa_handler = SIG_DFL;
        sigemptyset(&action.sa_mask);
        sigaction(SIGCHLD, &action, nullptr);
        reap_all_children();
    }
};

// Build an argv for a step's parse_options(), and make getopt_long() start
// afresh: it keeps its place between calls in optind (and glibc in hidden
// state too), and optind = 0 resets both. Without it, a second parse in the
// same process would start where the first one stopped.
class Argv {
  public:
    Argv(std::initializer_list<const char *> args) : strings_(args.begin(), args.end())
    {
        for (auto &s : strings_)
            pointers_.push_back(s.data());
        pointers_.push_back(nullptr);
        optind = 0;
    }
    int argc() const { return static_cast<int>(strings_.size()); }
    char **argv() { return pointers_.data(); }

  private:
    std::vector<std::string> strings_;
    std::vector<char *> pointers_;
};

}  // namespace support

namespace support {

// Block SIGCHLD, let n children exit and become zombies, install the handler,
// and unblock: the n SIGCHLD signals were merged into one pending signal, so
// the handler runs once. Return how many zombies it left behind.
inline int zombies_left_after_one_sigchld(void (*install_handler)(), int n)
{
    set_sigchld_blocked(true);
    install_handler();
    std::vector<pid_t> children;
    for (int i = 0; i < n; ++i) {
        pid_t pid = fork_child_exiting_after(0);
        if (pid == -1) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            break;
        }
        children.push_back(pid);
    }
    for (pid_t pid : children)
        wait_until_zombie(pid);
    set_sigchld_blocked(false);  // The pending SIGCHLD is delivered here, once.
    return reap_exited_children();
}

// Send SIGCHLD to the calling thread from another thread after delay_ms. No
// child has exited, so a handler's wait() fails with ECHILD.
class SigchldFromAnotherThread {
  public:
    explicit SigchldFromAnotherThread(int delay_ms) : target_(pthread_self()), delay_ms_(delay_ms)
    {
        if (pthread_create(&thread_, nullptr, &run, this) != 0)
            ADD_FAILURE() << "pthread_create failed";
    }
    ~SigchldFromAnotherThread() { pthread_join(thread_, nullptr); }
    SigchldFromAnotherThread(const SigchldFromAnotherThread &) = delete;
    SigchldFromAnotherThread &operator=(const SigchldFromAnotherThread &) = delete;

  private:
    static void *run(void *self_pointer)
    {
        auto *self = static_cast<SigchldFromAnotherThread *>(self_pointer);
        timespec delay{self->delay_ms_ / 1000, (self->delay_ms_ % 1000) * 1000000L};
        nanosleep(&delay, nullptr);
        pthread_kill(self->target_, SIGCHLD);
        return nullptr;
    }
    pthread_t target_;
    pthread_t thread_{};
    int delay_ms_;
};

}  // namespace support

namespace support {

// ---------------------------------------------------------------------------
// Bounds. A test that waits for something that a mistake prevents must not
// hang until CTest's limit: it waits a bounded time and then says what is
// likely wrong.

// Start a thread with SIGCHLD blocked in it. A SIGCHLD meant for the test's
// own thread (a child's exit, delivered to any thread that does not block it)
// then never lands on a helper thread instead.
inline pthread_t start_thread_without_sigchld(void *(*run)(void *), void *argument)
{
    sigset_t sigchld;
    sigset_t previous;
    sigemptyset(&sigchld);
    sigaddset(&sigchld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigchld, &previous);
    pthread_t thread{};
    int error = pthread_create(&thread, nullptr, run, argument);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (error != 0) {
        std::fprintf(stderr, "pthread_create: %s\n", std::strerror(error));
        std::abort();
    }
    return thread;
}

// One byte through a pipe, as a signal between threads. A lost byte shows up
// as a timeout where it is awaited.
inline void send_byte(int fd)
{
    char byte = 'x';
    if (write(fd, &byte, 1) == -1) {
        // Nothing to do: the reader's timeout reports it.
    }
}

inline bool receive_byte(int fd)
{
    char byte;
    return read(fd, &byte, 1) == 1;
}

// Connect to port after delay_ms, unless destroyed first: the way out of an
// accept() that should have been interrupted (or should have had a client by
// then) and was not. fired() tells whether it had to.
class ConnectUnlessDoneWithin {
  public:
    ConnectUnlessDoneWithin(int port, int delay_ms) : port_(port), delay_ms_(delay_ms)
    {
        if (pipe(done_) == -1) {
            std::perror("pipe");
            std::abort();
        }
        thread_ = start_thread_without_sigchld(&run, this);
    }
    ~ConnectUnlessDoneWithin()
    {
        send_byte(done_[1]);
        pthread_join(thread_, nullptr);
        close(done_[0]);
        close(done_[1]);
    }
    ConnectUnlessDoneWithin(const ConnectUnlessDoneWithin &) = delete;
    ConnectUnlessDoneWithin &operator=(const ConnectUnlessDoneWithin &) = delete;
    bool fired() const { return fired_; }

  private:
    static void *run(void *self_pointer)
    {
        auto *self = static_cast<ConnectUnlessDoneWithin *>(self_pointer);
        if (!readable_within(self->done_[0], self->delay_ms_)) {
            self->fired_ = true;
            self->connection_ = connect_to(self->port_);
        }
        return nullptr;
    }
    int port_;
    int delay_ms_;
    int done_[2]{-1, -1};
    pthread_t thread_{};
    std::atomic<bool> fired_{false};
    Fd connection_;
};

inline constexpr const char *kSaRestartHint =
    "accept() was not interrupted by SIGCHLD (a client had to be sent to end it): the handler was installed "
    "with SA_RESTART (glibc's signal() sets it), so the kernel restarted accept() and the EINTR lesson cannot show";

// ---------------------------------------------------------------------------
// Async-signal-safety: the handler must not touch stdio.

// Run in a death test (it ends the process). Let a child exit with SIGCHLD
// blocked, take stdout's and stderr's stdio locks on another thread, and then
// unblock SIGCHLD on this thread, the only one that accepts it: the handler
// runs here and now. A handler that calls printf(), puts(), fflush() or
// std::cout waits for the lock that the other thread holds, for ever; a
// watchdog then ends the process with exit status 3 and says why. A handler
// that uses write() alone returns, collects the child (unless it is one that
// leaves the collecting to the main loop: handler_reaps false, step h), and
// the process exits 0.
[[noreturn]] inline void run_handler_while_stdio_is_locked(void (*install_handler)(), int bound_ms = 1000,
                                                           bool handler_reaps = true)
{
    alarm(10);  // The last resort, should even the watchdog fail.
    sigset_t sigchld;
    sigemptyset(&sigchld);
    sigaddset(&sigchld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigchld, nullptr);
    // The handler's report goes nowhere; what counts is whether it returns.
    int null = open("/dev/null", O_WRONLY);
    if (null == -1 || dup2(null, STDOUT_FILENO) == -1) {
        std::perror("/dev/null");
        _exit(2);
    }
    close(null);
    install_handler();

    // The exited child, made before any thread exists (and before the locks
    // are taken: fork_child_exiting_after() flushes stdio).
    pid_t child = fork_child_exiting_after(0);
    siginfo_t info{};
    if (child == -1 || waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) == -1) {
        std::perror("fork or waitid");
        _exit(2);
    }

    static int locked[2];
    static int release[2];
    static int handled[2];
    if (pipe(locked) == -1 || pipe(release) == -1 || pipe(handled) == -1)
        _exit(2);
    static int bound;
    bound = bound_ms;
    auto holder = [](void *) -> void * {
        flockfile(stdout);
        flockfile(stderr);
        send_byte(locked[1]);
        receive_byte(release[0]);
        funlockfile(stderr);
        funlockfile(stdout);
        return nullptr;
    };
    auto watchdog = [](void *) -> void * {
        if (!readable_within(handled[0], bound)) {
            static const char message[] =
                "the SIGCHLD handler did not return while another thread held stdout's lock: it uses stdio "
                "(printf, puts, fflush, std::cout...), which is not async-signal-safe; a handler may only call "
                "async-signal-safe functions: format the line by hand and write() it (pitfall 15)\n";
            if (write(STDERR_FILENO, message, sizeof message - 1) == -1) {
                // Nothing more to say: the exit status tells it.
            }
            _exit(3);
        }
        return nullptr;
    };
    pthread_t holder_thread = start_thread_without_sigchld(holder, nullptr);
    if (!receive_byte(locked[0]))
        _exit(2);
    pthread_t watchdog_thread = start_thread_without_sigchld(watchdog, nullptr);

    // The pending SIGCHLD is delivered to this thread as this call returns.
    pthread_sigmask(SIG_UNBLOCK, &sigchld, nullptr);

    send_byte(handled[1]);
    send_byte(release[1]);
    pthread_join(watchdog_thread, nullptr);
    pthread_join(holder_thread, nullptr);
    if (handler_reaps && (waitpid(child, nullptr, WNOHANG) != -1 || errno != ECHILD)) {
        std::fprintf(stderr, "the handler returned but did not collect the exited child\n");
        _exit(4);
    }
    _exit(0);
}

}  // namespace support

namespace support {

// ---------------------------------------------------------------------------
// What a step prints: handle_request() called in this process, with stdout
// on a pipe for the call.

// Call a step's handle_request(), whichever form it has: (connection) or
// (connection, options), with the options' pause set to nothing.
template <typename Options, typename Handle>
void call_handle_request(Handle handle, int connection)
{
    if constexpr (std::is_invocable_v<Handle, int>) {
        handle(connection);
    } else {
        Options options{};
        options.sleep_seconds = 0;
        handle(connection, options);
    }
}

// What call() writes on stdout (through stdio or write() alike).
template <typename Call>
std::string stdout_of(Call call)
{
    std::fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int captured[2];
    if (saved == -1 || pipe(captured) == -1) {
        ADD_FAILURE() << "dup or pipe: " << std::strerror(errno);
        return {};
    }
    dup2(captured[1], STDOUT_FILENO);
    close(captured[1]);
    call();
    std::fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    std::string text = read_all(captured[0], 100);
    close(captured[0]);
    return text;
}

// ---------------------------------------------------------------------------
// A step's whole server, serve_forever(), in a process of its own.

// Options for a server under test, read by the step's own parse_options():
// loopback, a port the kernel chooses, and no pause after answering in the
// steps that have one.
template <typename Options, typename = void>
struct HasSleep : std::false_type {
};
template <typename Options>
struct HasSleep<Options, std::void_t<decltype(Options::sleep_seconds)>> : std::true_type {
};

template <typename Options, typename Parse>
Options options_for_test(Parse parse_options)
{
    optind = 0;  // A full reset for getopt_long() (pitfall 19); harmless otherwise.
    if constexpr (HasSleep<Options>::value) {
        static Argv args{"server", "--host", "127.0.0.1", "--port", "0", "--sleep", "0"};  // Options may point into it.
        return parse_options(args.argc(), args.argv());
    } else {
        static Argv args{"server", "--host", "127.0.0.1", "--port", "0"};
        return parse_options(args.argc(), args.argv());
    }
}

// The fields of /proc/PID/stat after the command name: [0] is field 3 of
// proc(5) (the state), [1] field 4 (the parent), [49] field 52 (the exit
// status of a zombie). Empty once the process is gone.
inline std::vector<std::string> proc_stat(pid_t pid)
{
    std::vector<std::string> fields;
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    int fd = open(path.c_str(), O_RDONLY);
    if (fd == -1)
        return fields;
    std::string stat = read_all(fd, 0);
    close(fd);
    std::size_t at = stat.rfind(')');  // The command name may hold spaces.
    if (at == std::string::npos)
        return fields;
    for (at += 2; at < stat.size();) {
        std::size_t end = stat.find_first_of(" \n", at);
        if (end == std::string::npos)
            end = stat.size();
        fields.push_back(stat.substr(at, end - at));
        at = end + 1;
    }
    return fields;
}

// The processes whose parent is pid.
inline std::vector<pid_t> children_of(pid_t pid)
{
    std::vector<pid_t> children;
    std::string parent = std::to_string(pid);
    if (DIR *proc = opendir("/proc")) {
        while (dirent *entry = readdir(proc)) {
            char *end;
            long candidate = std::strtol(entry->d_name, &end, 10);
            if (*end != '\0' || candidate <= 0)
                continue;
            std::vector<std::string> fields = proc_stat(static_cast<pid_t>(candidate));
            if (fields.size() > 1 && fields[1] == parent)
                children.push_back(static_cast<pid_t>(candidate));
        }
        closedir(proc);
    }
    return children;
}

// The sockets a process holds, as /proc names them ("socket:[inode]").
inline std::vector<std::string> sockets_of(pid_t pid)
{
    std::vector<std::string> sockets;
    std::string folder = "/proc/" + std::to_string(pid) + "/fd";
    if (DIR *fds = opendir(folder.c_str())) {
        while (dirent *entry = readdir(fds)) {
            char link[128];
            ssize_t n = readlink((folder + "/" + entry->d_name).c_str(), link, sizeof link - 1);
            if (n > 0 && std::string_view(link, static_cast<std::size_t>(n)).substr(0, 7) == "socket:")
                sockets.emplace_back(link, static_cast<std::size_t>(n));
        }
        closedir(fds);
    }
    return sockets;
}

// A step's serve_forever() in a forked process (and process group) of its
// own, its stdout and stderr on pipes, on a port the kernel chose. The
// process never returns into the test runner: serve_forever() does not
// return, and the process is killed with its whole group when this object
// goes (and killed at the latest when the test program ends).
class ServerProcess {
  public:
    template <typename Serve>
    explicit ServerProcess(Serve serve)
    {
#ifdef __linux__
        // The server's children, orphaned when it is killed, come back to
        // this process to be collected (rather than to PID 1).
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#endif
        int out_pipe[2];
        int err_pipe[2];
        if (pipe(out_pipe) == -1 || pipe(err_pipe) == -1) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            return;
        }
        std::fflush(nullptr);
        pid_ = fork();
        if (pid_ == 0) {
            setpgid(0, 0);
#ifdef __linux__
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
#endif
            alarm(30);
            dup2(out_pipe[1], STDOUT_FILENO);
            dup2(err_pipe[1], STDERR_FILENO);
            close(out_pipe[0]);
            close(out_pipe[1]);
            close(err_pipe[0]);
            close(err_pipe[1]);
            // stdout is a pipe now: buffered fully, as for a real server under test.
            std::setvbuf(stdout, nullptr, _IOFBF, BUFSIZ);
            serve();
            _exit(99);  // Not reached: serve_forever() does not return.
        }
        close(out_pipe[1]);
        close(err_pipe[1]);
        out_ = Fd(out_pipe[0]);
        err_ = Fd(err_pipe[0]);
        if (pid_ == -1) {
            ADD_FAILURE() << "fork: " << std::strerror(errno);
            return;
        }
        setpgid(pid_, pid_);  // Either call may come first.
        // The first line: "Serving HTTP on port N ...".
        std::string line;
        char c;
        while (line.find('\n') == std::string::npos && readable_within(out_.get(), 5000) &&
               read(out_.get(), &c, 1) == 1)
            line += c;
        out_text_ = line;
        const std::string_view prefix = "Serving HTTP on port ";
        if (line.compare(0, prefix.size(), prefix) == 0)
            port_ = static_cast<int>(std::strtol(line.c_str() + prefix.size(), nullptr, 10));
        if (port_ <= 0)
            ADD_FAILURE() << "the server's first line was " << ::testing::PrintToString(line) << "; stderr "
                          << ::testing::PrintToString(read_all(err_.get(), 100));
    }
    ~ServerProcess()
    {
        stop();
    }
    ServerProcess(const ServerProcess &) = delete;
    ServerProcess &operator=(const ServerProcess &) = delete;

    pid_t pid() const
    {
        return pid_;
    }
    int port() const
    {
        return port_;
    }

    // Everything printed on stdout so far (from the first line on), waiting
    // up to wait_ms for more.
    const std::string &out(int wait_ms = 100)
    {
        out_text_ += read_all(out_.get(), wait_ms);
        return out_text_;
    }
    const std::string &err(int wait_ms = 100)
    {
        err_text_ += read_all(err_.get(), wait_ms);
        return err_text_;
    }

    // Has the server exited? (It is collected then; exit_status() tells how.)
    bool exited()
    {
        if (status_ == -1 && pid_ > 0) {
            int status;
            if (waitpid(pid_, &status, WNOHANG) == pid_)
                status_ = status;
        }
        return status_ != -1;
    }
    int exit_status() const
    {
        return status_;
    }

    void stop()
    {
        if (pid_ <= 0)
            return;
        kill(-pid_, SIGKILL);
        kill(pid_, SIGKILL);
        if (status_ == -1)
            waitpid(pid_, &status_, 0);
        // Collect the server's children, handed to this process when it died.
        for (int i = 0; i < 500; ++i) {
            siginfo_t info{};
            info.si_pid = 0;
            if (waitid(P_PGID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG) == -1)
                break;  // None left (ECHILD).
            if (info.si_pid == 0) {
                kill(-pid_, SIGKILL);
                usleep(10000);  // Some are still dying.
            }
        }
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
    int port_ = -1;
    int status_ = -1;
    Fd out_;
    Fd err_;
    std::string out_text_;
    std::string err_text_;
};

// With the server stopped (SIGSTOP), so that it accepts nothing: how many of
// `attempts` connections complete the TCP handshake, that is, how many the
// kernel queues for it (the listen backlog, plus one on Linux). The whole
// process group is stopped: in step i the server's workers accept, and each
// of them must be stopped (state T) before the first attempt.
inline int connections_queued_while_stopped(ServerProcess &server, int attempts)
{
    int status;
    if (kill(-server.pid(), SIGSTOP) == -1 || waitpid(server.pid(), &status, WUNTRACED) != server.pid()) {
        ADD_FAILURE() << "could not stop the server: " << std::strerror(errno);
        return -1;
    }
    for (pid_t child : children_of(server.pid())) {
        std::vector<std::string> stat = proc_stat(child);
        for (int i = 0; i < 500 && !stat.empty() && stat[0] != "T" && stat[0] != "Z"; ++i) {
            usleep(10000);
            stat = proc_stat(child);
        }
    }
    std::vector<Fd> connections;
    int queued = 0;
    for (int i = 0; i < attempts; ++i) {
        Fd connection(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<uint16_t>(server.port()));
        int result = connect(connection.get(), reinterpret_cast<sockaddr *>(&address), sizeof address);
        if (result == -1 && errno != EINPROGRESS)
            break;
        // On loopback the handshake is over almost at once, unless the
        // server's queue is full: the kernel then drops the SYN, and the
        // client would only try again a second later. The queue stays full
        // while the server is stopped: stop at the first that waits.
        pollfd p{connection.get(), POLLOUT, 0};
        int error = 0;
        if (result == -1 && poll(&p, 1, 250) == 1) {
            socklen_t length = sizeof error;
            getsockopt(connection.get(), SOL_SOCKET, SO_ERROR, &error, &length);
        }
        if ((result == 0 || p.revents != 0) && error == 0)
            ++queued;
        else
            break;
        connections.push_back(std::move(connection));
    }
    kill(-server.pid(), SIGCONT);
    return queued;
}

}  // namespace support
