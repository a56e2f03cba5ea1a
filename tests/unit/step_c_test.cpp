// Step c: why the parent may close the connection it hands to its child.
// The kernel closes a connection only when the last descriptor for it is
// closed; fork() gives the child a second descriptor for the same connection.
#include "server_checks.hpp"

namespace step_c {
#include "step_c_fork/webserver3c.cpp"
}

using support::Fd;

WORKSHOP_COMMON_SERVER_TESTS(step_c, StepC, kArticlesBacklog)
WORKSHOP_CHILD_TESTS(step_c, StepC, 2, true, "")
WORKSHOP_SLEEP_OPTION_TESTS(step_c, StepC, 60.0)

TEST(StepCDescriptorReferenceCount, ThePeerSeesEndOfFileOnlyWhenBothCopiesAreClosed)
{
    int port = 0;
    Fd listener = support::listening_socket(&port);
    Fd client = support::connect_to(port);
    ASSERT_NE(client.get(), -1);
    Fd server(accept(listener.get(), nullptr, nullptr));
    ASSERT_NE(server.get(), -1);

    int go[2];
    ASSERT_EQ(pipe(go), 0);
    std::fflush(nullptr);
    pid_t child = fork();
    ASSERT_NE(child, -1);
    if (child == 0) {
        // The child holds its copy of the connection until told to exit.
        char byte;
        close(go[1]);
        ssize_t ignored = read(go[0], &byte, 1);
        (void)ignored;
        _exit(0);
    }
    close(go[0]);

    server.reset();  // The parent's copy: the count drops from 2 to 1.
    EXPECT_FALSE(support::readable_within(client.get(), 200)) << "end of file while the child still holds a copy";

    close(go[1]);  // The child exits, and its copy is closed: the count drops to 0.
    int status;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(support::readable_within(client.get(), 2000));
    char byte;
    EXPECT_EQ(read(client.get(), &byte, 1), 0) << "the peer should see end of file";
}
