// Step h: the SIGCHLD handler only writes one byte into a pipe; the main loop
// empties the pipe, collects every exited child and prints with stdio. And
// the demonstration of what goes wrong without it: step g with a maintainer's
// logging (demo_g_logging.cpp), whose handler prints with printf().
#include "server_checks.hpp"

#include <sys/ioctl.h>

namespace step_h {
#include "step_h_selfpipe/webserver3h.cpp"
}

namespace g_logging {
#include "step_h_selfpipe/demo_g_logging.cpp"
}

using support::Fd;

WORKSHOP_COMMON_SERVER_TESTS(step_h, StepH, kBurstBacklog)
WORKSHOP_CHILD_TESTS(step_h, StepH, 2, true, "")

namespace {

// How many bytes wait in a pipe.
int bytes_in_pipe(int fd)
{
    int n = -1;
    EXPECT_EQ(ioctl(fd, FIONREAD, &n), 0) << std::strerror(errno);
    return n;
}

// Fill a pipe until a write would wait, leaving its flags as they were: a
// blocking pipe stays blocking, and the next write to it waits.
void fill_pipe(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    ASSERT_NE(flags, -1);
    ASSERT_EQ(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
    static const char block[4096] = {};
    while (write(fd, block, sizeof block) > 0 || write(fd, block, 1) > 0) {
    }
    ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    ASSERT_EQ(fcntl(fd, F_SETFL, flags), 0);
}

// How many times `line` appears in text.
std::size_t count_of(const std::string &text, const std::string &line)
{
    std::size_t count = 0;
    for (std::size_t at = text.find(line); at != std::string::npos; at = text.find(line, at + 1))
        ++count;
    return count;
}

// Let a child exit and stay a zombie, and take its SIGCHLD off the pending
// set without running the handler: the handler then runs only when the test
// raises SIGCHLD itself, at the moment the test chooses.
pid_t zombie_whose_sigchld_was_taken()
{
    support::set_sigchld_blocked(true);
    pid_t child = support::fork_child_exiting_after(0);
    EXPECT_NE(child, -1);
    support::wait_until_zombie(child);
    sigset_t sigchld;
    sigemptyset(&sigchld);
    sigaddset(&sigchld, SIGCHLD);
    timespec none{0, 0};
    sigtimedwait(&sigchld, nullptr, &none);
    support::set_sigchld_blocked(false);
    return child;
}

// stdout replaced by a stream that records what is written to it, and that
// raises SIGCHLD inside its first write: the handler then runs exactly where
// a signal lands when it arrives as the main loop's fflush() finishes its
// write() system call, before stdio has marked its buffer as empty. (The
// signal is delivered as the system call returns.) Returns what was written.
struct Recorder {
    std::string written;
    int writes = 0;
};

ssize_t record_and_raise_sigchld_once(void *cookie, const char *data, std::size_t size)
{
    auto *recorder = static_cast<Recorder *>(cookie);
    recorder->written.append(data, size);
    if (recorder->writes++ == 0)
        raise(SIGCHLD);  // The handler runs here, before raise() returns.
    return static_cast<ssize_t>(size);
}

template <typename Print>
std::string written_with_sigchld_inside_the_first_write(Print print)
{
    Recorder recorder;
    cookie_io_functions_t functions{};
    functions.write = record_and_raise_sigchld_once;
    std::FILE *stream = fopencookie(&recorder, "w", functions);
    EXPECT_NE(stream, nullptr);
    std::FILE *saved = stdout;
    stdout = stream;
    print();
    std::fflush(stdout);
    stdout = saved;
    std::fclose(stream);
    return recorder.written;
}

// The server's stdout so far, once `done` holds of it or after timeout_ms.
template <typename Done>
const std::string &out_once(support::ServerProcess &server, Done done, int timeout_ms = 3000)
{
    for (int waited = 0; waited < timeout_ms && !done(server.out(0)); waited += 20)
        usleep(20000);
    return server.out(0);
}

}  // namespace

// ---------------------------------------------------------------------------
// The handler: one byte into the pipe, nothing else.

class StepHHandler : public support::SigchldRestored {
  protected:
    void TearDown() override
    {
        SigchldRestored::TearDown();
        for (int &fd : step_h::sigchld_pipe) {
            if (fd != -1)
                close(fd);
            fd = -1;
        }
    }
};

TEST_F(StepHHandler, IsInstalledWithSigactionSaRestartAndSaNocldstop)
{
    step_h::install_sigchld_handler();
    struct sigaction current {};
    ASSERT_EQ(sigaction(SIGCHLD, nullptr, &current), 0);
    EXPECT_EQ(current.sa_handler, &step_h::note_child_exit);
    EXPECT_NE(current.sa_flags & SA_RESTART, 0)
        << "without SA_RESTART every slow call in the server fails with EINTR when a child exits (a printf() "
           "waiting for a full pipe loses its line); the handler tells them nothing, so let the kernel restart them";
    EXPECT_NE(current.sa_flags & SA_NOCLDSTOP, 0) << "a stopped child has nothing to collect";
}

TEST_F(StepHHandler, WritesOneByteIntoThePipeAndLeavesTheChildToTheLoop)
{
    support::set_sigchld_blocked(true);
    step_h::install_sigchld_handler();
    pid_t child = support::fork_child_exiting_after(0);
    ASSERT_NE(child, -1);
    support::wait_until_zombie(child);
    // The pending SIGCHLD is delivered as it is unblocked: the handler runs once, here.
    std::string printed = support::stdout_of([] { support::set_sigchld_blocked(false); });
    EXPECT_EQ(bytes_in_pipe(step_h::sigchld_pipe[0]), 1) << "the handler writes exactly one byte into the pipe";
    EXPECT_EQ(printed, "") << "the handler printed: printing is the main loop's job, with stdio";
    EXPECT_EQ(waitpid(child, nullptr, WNOHANG), child)
        << "the handler collected the child: collecting (and reporting) is the main loop's job now; the handler "
           "only notes the signal";
}

TEST_F(StepHHandler, RestoresErrnoWhenThePipeIsFull)
{
    step_h::install_sigchld_handler();
    // A handler that waits for room in a full pipe would never return (AFullPipeDoesNotStopIt shows it).
    ASSERT_NE(fcntl(step_h::sigchld_pipe[1], F_GETFL) & O_NONBLOCK, 0)
        << "the pipe's write end is blocking: the handler would wait for ever for room in a full pipe";
    fill_pipe(step_h::sigchld_pipe[1]);
    errno = 12345;
    ASSERT_EQ(raise(SIGCHLD), 0);  // The handler's write() fails with EAGAIN.
    EXPECT_EQ(errno, 12345) << "the handler's failed write() changed errno: save it on entry, restore it on exit";
}

TEST(StepHHandlerDeathTest, AFullPipeDoesNotStopIt)
{
    EXPECT_EXIT(
        {
            alarm(2);  // A handler that waits for room in the pipe is killed here (SIGALRM).
            step_h::install_sigchld_handler();
            fill_pipe(step_h::sigchld_pipe[1]);
            raise(SIGCHLD);
            raise(SIGCHLD);
            _exit(0);
        },
        ::testing::ExitedWithCode(0), "")
        << "the handler waited for room in a full pipe, for ever (killed by SIGALRM): make the pipe's write end "
           "non-blocking (O_NONBLOCK); a write() that fails with EAGAIN loses nothing, since a byte already waits";
}

TEST(StepHHandlerDeathTest, UsesNoStdioSoItNeverWaitsForStdoutsLock)
{
    EXPECT_EXIT(support::run_handler_while_stdio_is_locked(step_h::install_sigchld_handler, 1000, false),
                ::testing::ExitedWithCode(0), "")
        << "the handler touched stdio while another thread held stdout's lock (see the message above)";
}

TEST_F(StepHHandler, AWriteThatWaitsForRoomCarriesOnAfterTheHandlerRuns)
{
    // What SA_RESTART buys: the main loop's printf() may wait in write() for a
    // full pipe (or a slow terminal) when a child exits.
    step_h::install_sigchld_handler();
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    Fd reader(fds[0]);
    Fd writer(fds[1]);
    fill_pipe(writer.get());
    struct Helper {
        pthread_t main_thread;
        int reader;
    } helper{pthread_self(), reader.get()};
    auto run = [](void *argument) -> void * {
        auto *h = static_cast<Helper *>(argument);
        // Once the main thread sleeps in write(), send it SIGCHLD; then make room.
        for (int i = 0; i < 300; ++i) {
            std::vector<std::string> stat = support::proc_stat(getpid());
            if (!stat.empty() && stat[0] == "S")
                break;
            usleep(10000);
        }
        pthread_kill(h->main_thread, SIGCHLD);
        usleep(100000);
        char room[8192];
        if (read(h->reader, room, sizeof room) == -1) {
            // The write below then waits: the test's bound tells.
        }
        return nullptr;
    };
    pthread_t thread = support::start_thread_without_sigchld(run, &helper);
    ssize_t n = write(writer.get(), "0123456789", 10);
    int error = errno;
    pthread_join(thread, nullptr);
    EXPECT_EQ(n, 10) << "write() failed with " << std::strerror(error)
                     << " when the SIGCHLD handler ran: install it with SA_RESTART";
    EXPECT_EQ(bytes_in_pipe(step_h::sigchld_pipe[0]), 1) << "the handler ran once";
}

// ---------------------------------------------------------------------------
// The main loop's side: empty the pipe, collect every child, print with stdio.

TEST_F(StepHHandler, OneByteForFiftyExitedChildrenCollectsAndReportsAllFifty)
{
    support::set_sigchld_blocked(true);
    step_h::install_sigchld_handler();
    std::vector<pid_t> children;
    for (int i = 0; i < 50; ++i) {
        pid_t pid = support::fork_child_exiting_after(0);
        ASSERT_NE(pid, -1);
        children.push_back(pid);
    }
    for (pid_t pid : children)
        support::wait_until_zombie(pid);
    support::set_sigchld_blocked(false);  // 50 exits, one merged signal: one byte.
    ASSERT_EQ(bytes_in_pipe(step_h::sigchld_pipe[0]), 1);

    std::string printed = support::stdout_of([] { step_h::grim_reaper(); });
    for (pid_t pid : children) {
        EXPECT_EQ(count_of(printed, "Child " + std::to_string(pid) + " terminated with status 0\n"), 1U)
            << "child " << pid << " was not reported exactly once; printed: " << printed;
    }
    EXPECT_EQ(support::reap_exited_children(), 0)
        << "zombies left after one note: collect every exited child (waitpid(-1, &status, WNOHANG) in a loop), "
           "not one per byte";
    EXPECT_EQ(bytes_in_pipe(step_h::sigchld_pipe[0]), 0)
        << "the pipe still holds its byte: poll() would report it readable at once, for ever (the loop spins at "
           "100% CPU); read the pipe empty before collecting";
}

TEST_F(StepHHandler, ReturnsAtOnceWhileAChildIsStillRunning)
{
    step_h::install_sigchld_handler();
    pid_t running = support::fork_child_exiting_after(2000);
    ASSERT_NE(running, -1);
    ASSERT_EQ(raise(SIGCHLD), 0);
    std::string printed = support::stdout_of([] { step_h::grim_reaper(); });
    EXPECT_EQ(waitpid(running, nullptr, WNOHANG), 0)
        << "the loop waited for a child that was still running: waitpid() without WNOHANG blocks the server";
    EXPECT_EQ(printed, "");
    kill(running, SIGKILL);
}

TEST(StepHServer, ABurstOfClientsLeavesNoChildAndEachIsReportedOnce)
{
    auto options = support::options_for_test<step_h::Options>(step_h::parse_options);
    support::ServerProcess server([&] { step_h::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    std::vector<Fd> clients;
    for (int i = 0; i < 40; ++i) {
        clients.push_back(support::connect_to(server.port()));
        ASSERT_NE(clients.back().get(), -1);
    }
    const std::string_view request = "GET /hello HTTP/1.1\r\n\r\n";
    for (const Fd &client : clients)
        ASSERT_EQ(write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    for (const Fd &client : clients)
        EXPECT_EQ(answer_on(client.get()), kExpectedResponse);
    const std::string &out =
        out_once(server, [](const std::string &text) { return count_of(text, " terminated with status 0\n") >= 40; });
    EXPECT_EQ(count_of(out, " terminated with status 0\n"), 40U) << out;
    std::vector<pid_t> left;
    for (int i = 0; i < 150 && !(left = support::children_of(server.pid())).empty(); ++i)
        usleep(20000);
    EXPECT_TRUE(left.empty()) << left.size() << " children of the server left (zombies?) 3 s after their answers";
    EXPECT_EQ(server.err(0), "");
}

// ---------------------------------------------------------------------------
// What goes wrong in step g, made deterministic: the handler runs inside the
// main loop's printf(), where a signal lands when it arrives as fflush()'s
// write() returns (README.md shows it under strace, in a burst).

class GLoggingHandler : public support::SigchldRestored {};

TEST_F(GLoggingHandler, ItsPrintfInsideTheLoopsPrintfPrintsTheLoopsLineTwice)
{
    g_logging::install_grim_reaper();
    pid_t child = zombie_whose_sigchld_was_taken();
    // The loop's logging line, printed as demo_g_logging.cpp's loop prints it.
    std::string written = written_with_sigchld_inside_the_first_write([] {
        std::printf("Child %ld started\n", 12345L);
        std::fflush(stdout);
    });
    // stdio had written the loop's line but not yet emptied its buffer; the
    // handler's printf() added its own line after it, and its fflush() wrote both.
    EXPECT_EQ(count_of(written, "Child 12345 started\n"), 2U) << written;
    EXPECT_EQ(count_of(written, "Child " + std::to_string(child) + " terminated with status 0\n"), 1U) << written;
}

TEST(GLoggingHandlerDeathTest, TouchesStdioSoItWaitsForStdoutsLock)
{
    // The check that catches it without luck: exit status 3 is the watchdog's.
    EXPECT_EXIT(support::run_handler_while_stdio_is_locked(g_logging::install_grim_reaper),
                ::testing::ExitedWithCode(3), "the SIGCHLD handler did not return");
}

TEST_F(StepHHandler, TheSameMomentInStepHPrintsEachLineOnce)
{
    // Two children have exited; the loop reports the first, and a SIGCHLD
    // lands inside that printf()'s write(): h's handler only adds a byte.
    step_h::install_sigchld_handler();
    pid_t first = zombie_whose_sigchld_was_taken();
    pid_t second = zombie_whose_sigchld_was_taken();
    std::string written = written_with_sigchld_inside_the_first_write([] { step_h::grim_reaper(); });
    EXPECT_EQ(count_of(written, "Child " + std::to_string(first) + " terminated with status 0\n"), 1U) << written;
    EXPECT_EQ(count_of(written, "Child " + std::to_string(second) + " terminated with status 0\n"), 1U) << written;
    EXPECT_EQ(count_of(written, "\n"), 2U) << written;
    EXPECT_EQ(bytes_in_pipe(step_h::sigchld_pipe[0]), 1) << "the handler's note, for the loop's next round";
}
