// Step i: a pool of --workers N processes, forked once, each accepting on the
// shared listening socket; the parent only collects a dead worker and
// replaces it when it was killed.
#include "server_checks.hpp"

#include <sys/resource.h>

#include <set>

namespace step_i {
#include "step_i_prefork/webserver3i.cpp"
}

using support::Fd;

WORKSHOP_COMMON_SERVER_TESTS(step_i, StepI, kBurstBacklog)

TEST(StepIOptions, WorkersDefaultsToFourAndTakesPlainDecimal)
{
    support::Argv none{"server"};
    EXPECT_EQ(step_i::parse_options(none.argc(), none.argv()).workers, 4);
    support::Argv one{"server", "--workers", "1"};
    EXPECT_EQ(step_i::parse_options(one.argc(), one.argv()).workers, 1);
    support::Argv most{"server", "--workers=1024"};
    EXPECT_EQ(step_i::parse_options(most.argc(), most.argv()).workers, 1024);
}

TEST(StepIOptions, BadWorkersIsAUsageError)
{
    // Plain decimal as for --port, from 1: strtod() alone would take hex, exponents, a sign, spaces, inf.
    for (const char *bad : {"0", "-1", "+4", " 4", "4 ", "\t4", "", "0x4", "1e1", "4.0", "4.", ".5", "4x", "-0", "00",
                            "inf", "nan", "1025", "99999999999999999999"}) {
        support::Argv args{"server", "--workers", bad};
        EXPECT_EXIT(step_i::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(2),
                    "^server: invalid number of workers: .*\nUsage:")
            << "--workers '" << bad << "'";
    }
    // 0 is named as typed, and the usage that follows lists --workers with its range.
    expect_usage_error(step_i::parse_options, {"server", "--workers=0"},
                       "^server: invalid number of workers: 0\nUsage: server .*\n  --workers N +worker processes, "
                       "from 1 to 1024");
}

TEST(StepIOptions, WorkersWithoutAValueAndAnUnknownOptionBesideItAreUsageErrors)
{
    expect_usage_error(step_i::parse_options, {"server", "--workers"}, "^server: missing value for: --workers\nUsage:");
    expect_usage_error(step_i::parse_options, {"server", "--workers=4", "-xy"}, "^server: unknown option: -x\nUsage:");
    expect_usage_error(step_i::parse_options, {"server", "--workers", "4", "-w", "4"},
                       "^server: unknown option: -w\nUsage:");
}

namespace {

std::size_t count_of(const std::string &text, const std::string &line)
{
    std::size_t count = 0;
    for (std::size_t at = text.find(line); at != std::string::npos; at = text.find(line, at + 1))
        ++count;
    return count;
}

step_i::Options pool_of(int workers)
{
    auto options = support::options_for_test<step_i::Options>(step_i::parse_options);
    options.workers = workers;
    return options;
}

// The server's children that are alive (not zombies).
std::set<pid_t> live_children(const support::ServerProcess &server)
{
    std::set<pid_t> live;
    for (pid_t child : support::children_of(server.pid())) {
        std::vector<std::string> stat = support::proc_stat(child);
        if (!stat.empty() && stat[0] != "Z")
            live.insert(child);
    }
    return live;
}

// The live children once there are `count` (3 s at most), and the server has no zombie.
std::set<pid_t> pool(const support::ServerProcess &server, std::size_t count)
{
    std::set<pid_t> live;
    for (int i = 0; i < 150; ++i) {
        live = live_children(server);
        if (live.size() == count && support::children_of(server.pid()).size() == count)
            break;
        usleep(20000);
    }
    return live;
}

// Send a request on a new connection and return the answer (3 s at most).
std::string ask(int port)
{
    Fd client = support::connect_to(port);
    const std::string_view request = "GET /hello HTTP/1.1\r\n\r\n";
    if (client.get() == -1 || write(client.get(), request.data(), request.size()) == -1)
        return "(no connection)";
    return answer_on(client.get());
}

// The PIDs in the "Child PID: X. Parent PID Y" lines, and whether every Y was `parent`.
std::vector<pid_t> answering_pids(const std::string &out, pid_t parent, bool *all_from_parent)
{
    std::vector<pid_t> pids;
    *all_from_parent = true;
    const std::string prefix = "Child PID: ";
    for (std::size_t at = out.find(prefix); at != std::string::npos; at = out.find(prefix, at + 1)) {
        char *end;
        pids.push_back(static_cast<pid_t>(std::strtol(out.c_str() + at + prefix.size(), &end, 10)));
        *all_from_parent = *all_from_parent && std::strtol(end + std::strlen(". Parent PID "), nullptr, 10) == parent;
    }
    return pids;
}

}  // namespace

TEST(StepIPool, StartsNWorkersThatShareTheListeningSocketWhileTheParentOnlyWaits)
{
    auto options = pool_of(3);
    support::ServerProcess server([&] { step_i::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    std::set<pid_t> workers = pool(server, 3);
    ASSERT_EQ(workers.size(), 3U) << "--workers 3 should start 3 children";
    std::vector<std::string> listener = support::sockets_of(server.pid());
    ASSERT_EQ(listener.size(), 1U) << "the parent holds the listening socket and nothing else";
    for (pid_t worker : workers) {
        std::vector<std::string> sockets = support::sockets_of(worker);
        EXPECT_EQ(sockets, listener) << "worker " << worker << " should hold the shared listening socket, and "
                                     << "nothing else while no client is connected";
    }
    EXPECT_EQ(ask(server.port()), kExpectedResponse);
    EXPECT_EQ(support::sockets_of(server.pid()), listener) << "the parent never accepts";
}

TEST(StepIPool, TheSameWorkersAnswerEveryRequestWithNoForkPerRequest)
{
    auto options = pool_of(3);
    support::ServerProcess server([&] { step_i::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    std::set<pid_t> workers = pool(server, 3);
    ASSERT_EQ(workers.size(), 3U);
    for (int i = 0; i < 20; ++i)
        ASSERT_EQ(ask(server.port()), kExpectedResponse) << "request " << i;
    bool all_from_parent = false;
    std::vector<pid_t> answered = answering_pids(server.out(200), server.pid(), &all_from_parent);
    EXPECT_EQ(answered.size(), 20U) << "each request is printed once, with the line of the process that answered";
    for (pid_t pid : answered)
        EXPECT_EQ(workers.count(pid), 1U) << "request answered by " << pid << ", which is not one of the workers "
                                          << "started at first: a fork per request again?";
    EXPECT_TRUE(all_from_parent) << "each worker's parent is the server";
    EXPECT_EQ(live_children(server), workers) << "the pool changed: workers are forked once and live on";
    EXPECT_EQ(support::children_of(server.pid()).size(), 3U) << "a zombie: a worker exited after its request?";
    EXPECT_EQ(count_of(server.out(0), "terminated"), 0U);
    EXPECT_EQ(server.err(0), "");
}

TEST(StepIPool, AKilledWorkerIsCollectedAndReplaced)
{
    auto options = pool_of(3);
    support::ServerProcess server([&] { step_i::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    std::set<pid_t> workers = pool(server, 3);
    ASSERT_EQ(workers.size(), 3U);
    pid_t killed = *workers.begin();
    ASSERT_EQ(kill(killed, SIGKILL), 0);

    std::set<pid_t> after;
    for (int i = 0; i < 250; ++i) {  // 5 s at most.
        after = live_children(server);
        if (after.size() == 3 && after.count(killed) == 0 && support::children_of(server.pid()).size() == 3)
            break;
        usleep(20000);
    }
    std::vector<pid_t> children = support::children_of(server.pid());
    EXPECT_EQ(std::count(children.begin(), children.end(), killed), 0)
        << "the killed worker is still the server's child (a zombie): the parent must wait() for it";
    EXPECT_EQ(after.size(), 3U) << "the pool is " << after.size()
                                << " strong after a worker was killed: the parent forks a new worker in its place";
    EXPECT_EQ(after.count(killed), 0U);
    std::string line = "Child " + std::to_string(killed) + " terminated with status 9\n";
    for (int i = 0; i < 100 && server.out(20).find(line) == std::string::npos; ++i) {
    }
    EXPECT_NE(server.out(0).find(line), std::string::npos) << server.out(0);
    for (int i = 0; i < 6; ++i)
        ASSERT_EQ(ask(server.port()), kExpectedResponse);
    EXPECT_EQ(server.err(0), "");
}

TEST(StepIPool, NClientsThatSendNothingHoldEveryWorkerAndTheNextClientWaits)
{
    auto options = pool_of(2);
    support::ServerProcess server([&] { step_i::serve_forever(options); });
    ASSERT_GT(server.port(), 0);
    std::set<pid_t> workers = pool(server, 2);
    ASSERT_EQ(workers.size(), 2U);
    Fd first = support::connect_to(server.port());
    Fd second = support::connect_to(server.port());
    ASSERT_NE(first.get(), -1);
    ASSERT_NE(second.get(), -1);
    // Each worker has accepted one silent client, and waits in recv().
    bool both_taken = false;
    for (int i = 0; i < 150 && !both_taken; ++i) {
        both_taken = true;
        for (pid_t worker : workers)
            both_taken = both_taken && support::sockets_of(worker).size() == 2;
        if (!both_taken)
            usleep(20000);
    }
    ASSERT_TRUE(both_taken) << "the two workers did not each accept a client within 3 s";

    Fd third = support::connect_to(server.port());
    ASSERT_NE(third.get(), -1);
    const std::string_view request = "GET /hello HTTP/1.1\r\n\r\n";
    ASSERT_EQ(write(third.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    EXPECT_FALSE(support::readable_within(third.get(), 500))
        << "a third client was answered while both workers held a silent client: more than 2 processes serve";

    ASSERT_EQ(write(first.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    EXPECT_EQ(answer_on(first.get()), kExpectedResponse);
    EXPECT_EQ(answer_on(third.get()), kExpectedResponse)
        << "the worker freed by the first client should take the third";
}

TEST(StepIPool, WorkersThatFailOnTheirOwnAreNotForkedAgainAndAgain)
{
    // Leave the server room for its listening socket and no more: each
    // worker's accept() fails with EMFILE, and it exits with status 1.
    auto options = pool_of(3);
    support::ServerProcess server([&] {
        int lowest_free = dup(STDIN_FILENO);
        close(lowest_free);
        rlimit limit{static_cast<rlim_t>(lowest_free + 1), static_cast<rlim_t>(lowest_free + 1)};
        setrlimit(RLIMIT_NOFILE, &limit);
        step_i::serve_forever(options);
    });
    ASSERT_GT(server.port(), 0);
    for (int i = 0; i < 150 && !server.exited(); ++i)
        usleep(20000);
    ASSERT_TRUE(server.exited()) << "the server still runs 3 s after every worker failed: does the parent fork a "
                                    "new worker for each that exits, which fails the same way, for ever? stderr: "
                                 << server.err(0).substr(0, 300);
    EXPECT_TRUE(WIFEXITED(server.exit_status()) && WEXITSTATUS(server.exit_status()) == 1);
    // Each worker's report, and the parent's last words. (Counted, not compared whole: built with the
    // sanitizers, their own checks at exit need descriptors too, and add lines of their own here.)
    const std::string &err = server.err(100);
    EXPECT_EQ(count_of(err, "accept: Too many open files\n"), 3U) << err;
    EXPECT_EQ(count_of(err, "wait: No child processes\n"), 1U) << err;
    EXPECT_EQ(count_of(server.out(0), " terminated with status 256\n"), 3U) << server.out(0);
}
