// Step g: the waitpid(WNOHANG) loop collects every exited child in one run.
#include "server_checks.hpp"

namespace step_g {
#include "step_g_waitpid/webserver3g.cpp"
}

using support::Fd;

WORKSHOP_COMMON_SERVER_TESTS(step_g, StepG, kBurstBacklog)
WORKSHOP_CHILD_TESTS(step_g, StepG, 2, true, "")
WORKSHOP_HANDLER_TESTS(step_g, StepG)
WORKSHOP_RESTART_TESTS(step_g, StepG)

TEST_F(StepGHandler, OneSignalForFiftyExitedChildrenCollectsAllFifty)
{
    EXPECT_EQ(support::zombies_left_after_one_sigchld(step_g::install_grim_reaper, 50), 0);
}

TEST_F(StepGHandler, ReturnsAtOnceWhileAChildIsStillRunning)
{
    // WNOHANG: the loop must not block the server waiting for a live child.
    step_g::install_grim_reaper();
    pid_t running = support::fork_child_exiting_after(2000);
    ASSERT_NE(running, -1);
    timespec before{};
    timespec after{};
    clock_gettime(CLOCK_MONOTONIC, &before);
    ASSERT_EQ(raise(SIGCHLD), 0);  // The handler runs here, and must return at once.
    clock_gettime(CLOCK_MONOTONIC, &after);
    EXPECT_EQ(waitpid(running, nullptr, WNOHANG), 0)
        << "the handler waited " << (after.tv_sec - before.tv_sec) << " s for a child that was still running: "
        << "waitpid() without WNOHANG blocks the whole server until that child exits";
    kill(running, SIGKILL);
}

TEST(StepGHandleRequest, AnswersTheExactBytes)
{
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    Fd client(pair[0]);
    Fd server(pair[1]);
    const std::string_view request = "GET /hello HTTP/1.1\r\n\r\n";
    ASSERT_EQ(write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    step_g::handle_request(server.get());
    server.reset();
    EXPECT_EQ(support::read_all(client.get()), kExpectedResponse);
}
