// Shared support for the unit tests: the system headers the step servers use,
// a descriptor that closes itself, and small helpers for sockets and children.
//
// Each unit test includes one step's own server source inside a namespace of
// its own (see include_step.hpp), so the tests exercise the very code the
// workshop shows, not a copy of it. The headers are included here first, at
// global scope; their include guards then keep them out of that namespace.
#pragma once

#include <arpa/inet.h>
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

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

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
// same process would see no options at all.
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
