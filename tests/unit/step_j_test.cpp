// Step j: one process, non-blocking sockets and an epoll event loop. It
// serves a client while others are connected and idle, and closes each
// client's descriptor once it is done with it.
#include "server_checks.hpp"

namespace step_j {
#include "step_j_epoll/webserver3j.cpp"
}

using support::Fd;

WORKSHOP_COMMON_SERVER_TESTS(step_j, StepJ, kBurstBacklog)

namespace {

const std::string_view kRequest = "GET /hello HTTP/1.1\r\n\r\n";

// A connected pair of sockets: [0] the client's end, [1] the server's, non-blocking as step j makes it.
struct Pair {
    Fd client;
    Fd server;
};

Pair connected_pair()
{
    int pair[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    step_j::set_nonblocking(pair[1]);
    return {Fd(pair[0]), Fd(pair[1])};
}

// The server's sockets once there are `count` of them (3 s at most).
std::size_t sockets_once(const support::ServerProcess &server, std::size_t count)
{
    std::size_t now = 0;
    for (int i = 0; i < 150; ++i) {
        now = support::sockets_of(server.pid()).size();
        if (now == count)
            break;
        usleep(20000);
    }
    return now;
}

}  // namespace

TEST(StepJHandleRequest, AnswersTheExactBytesAndIsDoneWithTheConnection)
{
    Pair pair = connected_pair();
    ASSERT_EQ(write(pair.client.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
    bool done = false;
    std::string printed = support::stdout_of([&] { done = step_j::handle_request(pair.server.get()); });
    EXPECT_TRUE(done);
    EXPECT_NE(printed.find("GET /hello HTTP/1.1\n"), std::string::npos) << printed;
    EXPECT_EQ(printed.rfind("Child PID: " + std::to_string(getpid()) + ". Parent PID ", 0), 0U)
        << "the one process prints its own PID: " << printed;
    pair.server.reset();
    EXPECT_EQ(support::read_all(pair.client.get()), kExpectedResponse);
}

TEST(StepJHandleRequest, WithNothingToReadItWaitsForMoreInsteadOfBlocking)
{
    Pair pair = connected_pair();
    bool done = true;
    std::string printed = support::stdout_of([&] { done = step_j::handle_request(pair.server.get()); });
    EXPECT_FALSE(done) << "nothing had arrived (recv: EAGAIN): keep the connection and wait for epoll";
    EXPECT_EQ(printed, "");
}

TEST(StepJHandleRequest, AClientThatLeftWithoutSendingIsDoneWith)
{
    Pair pair = connected_pair();
    pair.client.reset();
    bool done = false;
    std::string printed = support::stdout_of([&] { done = step_j::handle_request(pair.server.get()); });
    EXPECT_TRUE(done) << "end of file: the connection is over, and its descriptor must be closed";
    EXPECT_EQ(printed, "");
}

TEST(StepJServer, ServesASecondClientWhileAFirstIsConnectedAndIdle)
{
    auto options = support::options_for_test<step_j::Options>(step_j::parse_options);
    support::ServerProcess server([&] { step_j::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    Fd idle = support::connect_to(server.port());
    ASSERT_NE(idle.get(), -1);
    ASSERT_EQ(sockets_once(server, 2), 2U) << "the server did not accept the first client within 3 s";
    Fd second = support::connect_to(server.port());
    ASSERT_NE(second.get(), -1);
    ASSERT_EQ(write(second.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
    EXPECT_EQ(answer_on(second.get()), kExpectedResponse)
        << "the second client was not answered while the first one was connected and silent: the server waits for "
           "one client (a blocking recv()?); every socket must be non-blocking, and only epoll_wait() may wait";
    ASSERT_EQ(write(idle.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
    EXPECT_EQ(answer_on(idle.get()), kExpectedResponse);
}

TEST(StepJServer, ClosesTheDescriptorOfEveryClientThatLeaves)
{
    auto options = support::options_for_test<step_j::Options>(step_j::parse_options);
    support::ServerProcess server([&] { step_j::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    ASSERT_EQ(support::sockets_of(server.pid()).size(), 1U);
    std::vector<Fd> silent;
    silent.reserve(20);
    for (int i = 0; i < 20; ++i)
        silent.push_back(support::connect_to(server.port()));
    EXPECT_EQ(sockets_once(server, 21), 21U) << "the server should hold each of the 20 connected clients";
    silent.clear();  // They leave without a word.
    EXPECT_EQ(sockets_once(server, 1), 1U)
        << "the server still holds clients that have gone: close a connection's descriptor at its end of file";
    for (int i = 0; i < 20; ++i) {
        Fd client = support::connect_to(server.port());
        ASSERT_EQ(write(client.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
        ASSERT_EQ(answer_on(client.get()), kExpectedResponse)
            << "the server keeps the descriptor of a client it has answered: close it once handle_request() is done "
               "with it";
    }
    EXPECT_EQ(sockets_once(server, 1), 1U) << "the server holds answered clients' descriptors";
    EXPECT_EQ(server.err(0), "");
}

TEST(StepJServer, AnswersEveryClientFromOneProcessWithNoChild)
{
    auto options = support::options_for_test<step_j::Options>(step_j::parse_options);
    support::ServerProcess server([&] { step_j::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    for (int i = 0; i < 5; ++i) {
        Fd client = support::connect_to(server.port());
        ASSERT_EQ(write(client.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
        ASSERT_EQ(answer_on(client.get()), kExpectedResponse);
    }
    EXPECT_TRUE(support::children_of(server.pid()).empty()) << "step j forks no child";
    const std::string line =
        "Child PID: " + std::to_string(server.pid()) + ". Parent PID " + std::to_string(getpid()) + "\n";
    std::string out = server.out(200);
    std::size_t printed = 0;
    for (std::size_t at = out.find(line); at != std::string::npos; at = out.find(line, at + 1))
        ++printed;
    EXPECT_EQ(printed, 5U) << "each request printed once, by the server itself: " << out;
}

TEST(StepJServer, CarriesOnAfterBeingStoppedAndContinued)
{
    // Linux's epoll_wait() fails with EINTR after SIGSTOP and SIGCONT, even
    // with no signal handler installed (signal(7)).
    auto options = support::options_for_test<step_j::Options>(step_j::parse_options);
    support::ServerProcess server([&] { step_j::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    usleep(100000);  // Let it reach epoll_wait().
    int status;
    ASSERT_EQ(kill(server.pid(), SIGSTOP), 0);
    ASSERT_EQ(waitpid(server.pid(), &status, WUNTRACED), server.pid());
    ASSERT_EQ(kill(server.pid(), SIGCONT), 0);
    Fd client = support::connect_to(server.port());
    ASSERT_EQ(write(client.get(), kRequest.data(), kRequest.size()), static_cast<ssize_t>(kRequest.size()));
    EXPECT_EQ(answer_on(client.get()), kExpectedResponse);
    EXPECT_FALSE(server.exited()) << "stderr: " << server.err(100);
    EXPECT_EQ(server.err(0), "") << "epoll_wait() fails with EINTR after a stop and a continue: wait again";
}
