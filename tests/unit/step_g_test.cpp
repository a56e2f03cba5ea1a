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
    ASSERT_EQ(raise(SIGCHLD), 0);  // Returns only if the handler did not block.
    EXPECT_EQ(waitpid(running, nullptr, WNOHANG), 0) << "the running child must not have been collected";
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
