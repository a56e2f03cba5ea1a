// Step e: the SIGCHLD handler interrupts accept(), and the server dies of it.
#include "server_checks.hpp"

namespace step_e {
#include "step_e_sigchld/webserver3e.cpp"
}

WORKSHOP_COMMON_SERVER_TESTS(step_e, StepE, kArticlesBacklog)
WORKSHOP_CHILD_TESTS(step_e, StepE, 1, true, "accept: Interrupted system call\n")
WORKSHOP_SLEEP_OPTION_TESTS(step_e, StepE, 3.0)
WORKSHOP_HANDLER_TESTS(step_e, StepE)

TEST(StepEDeathTest, AcceptConnectionDiesWithInterruptedSystemCallWhenAChildExits)
{
    EXPECT_EXIT(
        {
            alarm(10);  // The last resort.
            step_e::install_grim_reaper();
            int port = 0;
            support::Fd listener = support::listening_socket(&port);
            support::fork_child_exiting_after(100);
            support::ConnectUnlessDoneWithin rescue(port, 1000);
            step_e::accept_connection(listener.get());
            // Reached only if accept() survived the signal.
            std::fprintf(stderr,
                         "accept_connection() survived the child's exit (a client had to be sent to end it): step "
                         "e's lesson is that accept() fails with EINTR and the server dies; either accept() is "
                         "retried on EINTR (that is step f's fix) or the handler has SA_RESTART (glibc's signal() "
                         "sets it)\n");
            std::exit(0);
        },
        ::testing::ExitedWithCode(1), "^accept: Interrupted system call\n$");
}

TEST_F(StepEHandler, WithSaRestartAsSignalWouldSetTheAcceptIsRestartedAndNothingShows)
{
    // What glibc's signal() installs (musl's, macOS's and the BSDs' too): the
    // kernel restarts accept() after the handler, and step e would never
    // crash. This is why the steps use sigaction().
    struct sigaction action {};
    action.sa_handler = step_e::grim_reaper;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ASSERT_EQ(sigaction(SIGCHLD, &action, nullptr), 0);
    int port = 0;
    support::Fd listener = support::listening_socket(&port);
    pid_t exiting = support::fork_child_exiting_after(100);
    pid_t connecting = support::fork_child_connecting_after(400, port);
    ASSERT_NE(exiting, -1);
    ASSERT_NE(connecting, -1);
    support::ConnectUnlessDoneWithin rescue(port, 3000);
    support::Fd connection(accept(listener.get(), nullptr, nullptr));
    EXPECT_NE(connection.get(), -1) << std::strerror(errno);
    EXPECT_FALSE(rescue.fired()) << "the client connecting after 0.4 s never got through";
    EXPECT_EQ(waitpid(exiting, nullptr, WNOHANG), -1) << "the handler should have run during accept()";
}
