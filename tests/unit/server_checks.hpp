// Checks that every step's server must pass: its command line and its answer.
// Each step's test file includes its own server source and then expands these
// macros for it, so that one copy of the checks serves all seven steps.
#pragma once

#include "support.hpp"

#include <algorithm>

// The contract's answer: no Content-Length, the body ends when the connection does.
inline constexpr std::string_view kExpectedResponse = "HTTP/1.1 200 OK\r\n\r\nHello, World!\n";

// What the server sends on fd: 3 s for the answer, then end of file at once
// (1 s is a bound that only a connection left open somewhere waits out). A
// connection left open shows as " (no end of file)" after the answer.
inline std::string answer_on(int fd)
{
    std::string answer;
    char buffer[256];
    while (support::readable_within(fd, answer.size() < kExpectedResponse.size() ? 3000 : 1000)) {
        ssize_t n = read(fd, buffer, sizeof buffer);
        if (n <= 0)
            return answer;
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    return answer + " (no end of file)";
}

// parse_options(args) must print usage on stderr, matching pattern, and exit 2.
template <typename Parse>
void expect_usage_error(Parse parse, std::initializer_list<const char *> args, const char *pattern)
{
    support::Argv argv(args);
    EXPECT_EXIT(parse(argv.argc(), argv.argv()), ::testing::ExitedWithCode(2), pattern);
}

// A request with bytes that would drive a terminal: clear the screen, set the window title, ring the bell.
inline constexpr std::string_view kHostileRequest = "GET /\x1b[2J\x1b]0;owned\x07 HTTP/1.1\r\n\r\n";

inline void expect_escaped(const std::string &printed)
{
    EXPECT_NE(printed.find("GET /\\x1b[2J\\x1b]0;owned\\x07 HTTP/1.1"), std::string::npos)
        << "the request should be printed with its control bytes escaped (\\x1b); printed: "
        << ::testing::PrintToString(printed);
    EXPECT_EQ(printed.find_first_of("\x1b\x07\r"), std::string::npos)
        << "the request was printed raw: a request is untrusted input, and its bytes must not reach the "
           "terminal (escape_request() before printing); printed: "
        << ::testing::PrintToString(printed);
}

// Backlog as in the article: 5 for steps a-e, 1024 for f and g. (Linux queues
// one connection more than the backlog says.)
inline constexpr int kArticlesBacklog = 5;
inline constexpr int kBurstBacklog = 1024;

inline void expect_backlog(int queued, int backlog)
{
    if (backlog == kBurstBacklog) {
        EXPECT_EQ(queued, 64) << "only " << queued << " of 64 connections were queued while the server was stopped: "
                              << "the listen backlog is too small (listen(..., 5)?); steps f and g use 1024, so that a "
                                 "burst of 128 clients is queued, not dropped and retried a second later";
    } else {
        EXPECT_TRUE(queued == backlog || queued == backlog + 1)
            << queued << " connections were queued while the server was stopped; the article's backlog of " << backlog
            << " queues " << backlog << " (Linux: " << backlog + 1 << ")";
    }
}

#define WORKSHOP_COMMON_SERVER_TESTS(step, Suite, backlog)                                                           \
    TEST(Suite##Options, DefaultsAreTheArticlesPortAndLoopback)                                                      \
    {                                                                                                                \
        support::Argv args{"server"};                                                                                \
        auto options = step::parse_options(args.argc(), args.argv());                                                \
        EXPECT_EQ(options.port, 8888);                                                                               \
        EXPECT_STREQ(options.host, "127.0.0.1");                                                                     \
        EXPECT_EQ(options.address.s_addr, htonl(INADDR_LOOPBACK));                                                   \
    }                                                                                                                \
    TEST(Suite##Options, PortAndHostInBothSpellings)                                                                 \
    {                                                                                                                \
        support::Argv args{"server", "--port", "0", "--host=0.0.0.0"};                                               \
        auto options = step::parse_options(args.argc(), args.argv());                                                \
        EXPECT_EQ(options.port, 0);                                                                                  \
        EXPECT_STREQ(options.host, "0.0.0.0");                                                                       \
        EXPECT_EQ(options.address.s_addr, htonl(INADDR_ANY));                                                        \
        support::Argv other{"server", "--port=65535", "--host", "127.0.0.2"};                                        \
        auto more = step::parse_options(other.argc(), other.argv());                                                 \
        EXPECT_EQ(more.port, 65535);                                                                                 \
        EXPECT_STREQ(more.host, "127.0.0.2");                                                                        \
        EXPECT_EQ(more.address.s_addr, htonl(0x7f000002));                                                           \
    }                                                                                                                \
    TEST(Suite##Options, HostIsAnAddressNotAName)                                                                    \
    {                                                                                                                \
        /* inet_pton(), not a name lookup: a static glibc program warns at link time against getaddrinfo(). */       \
        for (const char *bad : {"localhost", "127.1", "1.2.3.256", "", "::1"})                                       \
            expect_usage_error(step::parse_options, {"server", "--host", bad},                                       \
                               (std::string("^server: invalid address: ") + bad + "\nUsage:").c_str());              \
    }                                                                                                                \
    TEST(Suite##Options, PortIsPlainDecimal)                                                                         \
    {                                                                                                                \
        /* Decimal even with a leading zero: 010 is ten, not octal eight. */                                         \
        support::Argv args{"server", "--port", "010"};                                                               \
        EXPECT_EQ(step::parse_options(args.argc(), args.argv()).port, 10);                                           \
    }                                                                                                                \
    TEST(Suite##Options, BadPortIsAUsageError)                                                                       \
    {                                                                                                                \
        /* strtod() alone takes hex (0x50 is 80), exponents, a sign and leading spaces. */                           \
        for (const char *bad : {"abc", "70000", "-1", "", "80x", "65536", "1.5", "0x50", "1e3", " 80", "+80", "80 ", \
                                "-0", "8.", "99999999999999999999999"}) {                                            \
            support::Argv args{"server", "--port", bad};                                                             \
            EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(2),                 \
                        "invalid port.*\nUsage:")                                                                    \
                << "--port " << ::testing::PrintToString(bad);                                                       \
        }                                                                                                            \
    }                                                                                                                \
    TEST(Suite##Options, UnknownOptionMissingValueAndBadHostAreUsageErrors)                                          \
    {                                                                                                                \
        /* Anchored: the program's own message first, none from getopt_long() before it. */                          \
        expect_usage_error(step::parse_options, {"server", "--bogus"},                                               \
                           "^server: unknown option: --bogus\nUsage: server");                                       \
        expect_usage_error(step::parse_options, {"server", "-p", "80"}, "^server: unknown option: -p\nUsage:");      \
        /* In a cluster the unknown letter is named, not the program (optopt, not argv[optind - 1]). */              \
        expect_usage_error(step::parse_options, {"server", "-xy"}, "^server: unknown option: -x\nUsage:");           \
        expect_usage_error(step::parse_options, {"server", "--port=80", "-xy"}, "^server: unknown option: -x\n");    \
        /* A long option given a value it does not take: named as typed, not by its code. */                         \
        expect_usage_error(step::parse_options, {"server", "--help=1"}, "^server: unknown option: --help=1\n");      \
        expect_usage_error(step::parse_options, {"server", "--port"}, "^server: missing value for: --port\nUsage:"); \
        expect_usage_error(step::parse_options, {"server", "--port", "1", "extra"},                                  \
                           "^server: unexpected argument: extra\nUsage:");                                           \
        expect_usage_error(step::parse_options, {"server", "--host", "no-such-host.invalid"},                        \
                           "^server: invalid address: no-such-host.invalid\nUsage:");                                \
    }                                                                                                                \
    TEST(Suite##Options, HelpExitsWithSuccess)                                                                       \
    {                                                                                                                \
        support::Argv args{"server", "--help"};                                                                      \
        EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(0), "");                \
    }                                                                                                                \
    TEST(Suite##Response, IsTheContractsBytesWithoutContentLength)                                                   \
    {                                                                                                                \
        EXPECT_EQ(step::HTTP_RESPONSE, kExpectedResponse);                                                           \
        EXPECT_EQ(step::HTTP_RESPONSE.find("Content-Length"), std::string_view::npos)                                \
            << "a Content-Length header lets curl stop after the body, and step d's hang never shows";               \
    }                                                                                                                \
    TEST(Suite##HandleRequest, PrintsTheRequestWithControlBytesEscaped)                                              \
    {                                                                                                                \
        int pair[2];                                                                                                 \
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);                                                     \
        support::Fd client(pair[0]);                                                                                 \
        support::Fd server(pair[1]);                                                                                 \
        ASSERT_EQ(write(client.get(), kHostileRequest.data(), kHostileRequest.size()),                               \
                  static_cast<ssize_t>(kHostileRequest.size()));                                                     \
        std::string printed = support::stdout_of(                                                                    \
            [&] { support::call_handle_request<step::Options>(step::handle_request, server.get()); });               \
        expect_escaped(printed);                                                                                     \
    }                                                                                                                \
    TEST(Suite##Listen, BacklogIsTheContracts)                                                                       \
    {                                                                                                                \
        auto options = support::options_for_test<step::Options>(step::parse_options);                                \
        support::ServerProcess server([&] { step::serve_forever(options); });                                        \
        ASSERT_GT(server.port(), 0);                                                                                 \
        expect_backlog(support::connections_queued_while_stopped(server, 64), backlog);                              \
    }

// Steps b, c and e take --sleep, with the article's default for that step.
#define WORKSHOP_SLEEP_OPTION_TESTS(step, Suite, default_seconds)                                                   \
    TEST(Suite##Options, SleepDefaultsToTheArticlesAndTakesFractions)                                               \
    {                                                                                                               \
        support::Argv none{"server"};                                                                               \
        EXPECT_DOUBLE_EQ(step::parse_options(none.argc(), none.argv()).sleep_seconds, default_seconds);             \
        support::Argv half{"server", "--sleep", "0.5"};                                                             \
        EXPECT_DOUBLE_EQ(step::parse_options(half.argc(), half.argv()).sleep_seconds, 0.5);                         \
        support::Argv whole{"server", "--sleep", "10"};                                                             \
        EXPECT_DOUBLE_EQ(step::parse_options(whole.argc(), whole.argv()).sleep_seconds, 10.0);                      \
    }                                                                                                               \
    TEST(Suite##Options, BadSleepIsAUsageError)                                                                     \
    {                                                                                                               \
        /* Plain decimal with an optional fraction: digits, then a point and digits. */                             \
        for (const char *bad : {"-1", "soon", "", "nan", "inf", "1e1", "0x1p3", " 1", "+1", ".5", "5.", "86401"}) { \
            support::Argv args{"server", "--sleep", bad};                                                           \
            EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(2),                \
                        "invalid number of seconds")                                                                \
                << "--sleep " << ::testing::PrintToString(bad);                                                     \
        }                                                                                                           \
    }

// Steps e, f and g install a SIGCHLD handler, and it must be a careful one.
#define WORKSHOP_HANDLER_TESTS(step, Suite)                                                                        \
    class Suite##Handler : public support::SigchldRestored {};                                                     \
    TEST_F(Suite##Handler, IsInstalledWithSigactionAndWithoutSaRestart)                                            \
    {                                                                                                              \
        step::install_grim_reaper();                                                                               \
        struct sigaction current {};                                                                               \
        ASSERT_EQ(sigaction(SIGCHLD, nullptr, &current), 0);                                                       \
        EXPECT_EQ(current.sa_handler, &step::grim_reaper);                                                         \
        EXPECT_EQ(current.sa_flags &SA_RESTART, 0) << "glibc's signal() sets SA_RESTART, hiding the EINTR lesson"; \
        EXPECT_NE(current.sa_flags &SA_NOCLDSTOP, 0)                                                               \
            << "without it a child that only stops sends SIGCHLD, and a wait() there blocks the server";           \
    }                                                                                                              \
    TEST_F(Suite##Handler, RestoresErrnoWhenItsWaitFails)                                                          \
    {                                                                                                              \
        step::install_grim_reaper();                                                                               \
        errno = 12345;                                                                                             \
        ASSERT_EQ(raise(SIGCHLD), 0); /* No child: the handler's wait fails with ECHILD. */                        \
        EXPECT_EQ(errno, 12345);                                                                                   \
    }                                                                                                              \
    TEST_F(Suite##Handler, AnInterruptedAcceptStillReportsEintrAfterTheHandlerRan)                                 \
    {                                                                                                              \
        step::install_grim_reaper();                                                                               \
        int port = 0;                                                                                              \
        support::Fd listener = support::listening_socket(&port);                                                   \
        int result;                                                                                                \
        int error;                                                                                                 \
        {                                                                                                          \
            support::SigchldFromAnotherThread signal_soon(100);                                                    \
            support::ConnectUnlessDoneWithin rescue(port, 1000);                                                   \
            result = accept(listener.get(), nullptr, nullptr);                                                     \
            error = errno;                                                                                         \
        }                                                                                                          \
        support::Fd accepted(result);                                                                              \
        ASSERT_EQ(result, -1) << support::kSaRestartHint;                                                          \
        EXPECT_EQ(error, EINTR) << "got " << std::strerror(error)                                                  \
                                << ": the handler clobbered errno (save it on entry, restore it on exit)";         \
    }                                                                                                              \
    TEST_F(Suite##Handler, CollectsAnExitedChildAndInterruptsABlockedAccept)                                       \
    {                                                                                                              \
        step::install_grim_reaper();                                                                               \
        int port = 0;                                                                                              \
        support::Fd listener = support::listening_socket(&port);                                                   \
        pid_t child = support::fork_child_exiting_after(100);                                                      \
        ASSERT_NE(child, -1);                                                                                      \
        int result;                                                                                                \
        int error;                                                                                                 \
        {                                                                                                          \
            support::ConnectUnlessDoneWithin rescue(port, 1000);                                                   \
            result = accept(listener.get(), nullptr, nullptr);                                                     \
            error = errno;                                                                                         \
        }                                                                                                          \
        support::Fd accepted(result);                                                                              \
        ASSERT_EQ(result, -1) << support::kSaRestartHint;                                                          \
        EXPECT_EQ(error, EINTR);                                                                                   \
        EXPECT_EQ(waitpid(child, nullptr, WNOHANG), -1) << "the handler should have collected the child";          \
        EXPECT_EQ(errno, ECHILD);                                                                                  \
    }                                                                                                              \
    TEST(Suite##HandlerDeathTest, UsesNoStdioSoItNeverWaitsForStdoutsLock)                                         \
    {                                                                                                              \
        EXPECT_EXIT(support::run_handler_while_stdio_is_locked(step::install_grim_reaper),                         \
                    ::testing::ExitedWithCode(0), "")                                                              \
            << "the handler is not async-signal-safe: it touched stdio while another thread held "                 \
               "stdout's lock (see the message above)";                                                            \
    }

// Steps f and g restart accept(): a child's exit no longer ends the loop.
#define WORKSHOP_RESTART_TESTS(step, Suite)                                                           \
    TEST_F(Suite##Handler, AcceptConnectionKeepsAcceptingAfterAChildExits)                            \
    {                                                                                                 \
        step::install_grim_reaper();                                                                  \
        int port = 0;                                                                                 \
        support::Fd listener = support::listening_socket(&port);                                      \
        pid_t exiting = support::fork_child_exiting_after(100);                                       \
        pid_t connecting = support::fork_child_connecting_after(400, port);                           \
        ASSERT_NE(exiting, -1);                                                                       \
        ASSERT_NE(connecting, -1);                                                                    \
        support::ConnectUnlessDoneWithin rescue(port, 3000);                                          \
        support::Fd connection(step::accept_connection(listener.get()));                              \
        EXPECT_NE(connection.get(), -1);                                                              \
        EXPECT_FALSE(rescue.fired()) << "the client connecting after 0.4 s never got through";        \
        EXPECT_EQ(waitpid(exiting, nullptr, WNOHANG), -1) << "the child's exit came during accept()"; \
    }

// Steps c-g fork a child per connection: it answers, prints the request once,
// and exits with status 0 (and the server says nothing on stderr, except step
// e's lesson, which ends it).
inline void expect_child_answers_and_exits(support::ServerProcess &server, int requests, bool parent_closes,
                                           std::string_view allowed_stderr)
{
    for (int i = 0; i < requests; ++i) {
        support::Fd client = support::connect_to(server.port());
        ASSERT_NE(client.get(), -1);
        const std::string_view request = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
        ASSERT_EQ(write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
        std::string answer;
        bool closed = false;
        char buffer[256];
        // 3 s for the answer; once it is complete, end of file follows at once from a server that works: 1 s
        // is a bound that only a connection still open somewhere waits out.
        while (support::readable_within(client.get(), answer.size() < kExpectedResponse.size() ? 3000 : 1000)) {
            ssize_t n = read(client.get(), buffer, sizeof buffer);
            if (n <= 0) {
                closed = true;
                break;
            }
            answer.append(buffer, static_cast<std::size_t>(n));
            if (!parent_closes && answer.size() >= kExpectedResponse.size())
                break;  // Step d: the connection stays open; that is its lesson.
        }
        EXPECT_EQ(answer, kExpectedResponse);
        if (parent_closes) {
            EXPECT_TRUE(closed) << "no end of file 1 s after the answer: a copy of the connection is still open "
                                   "(the parent closes its copy after fork(), the child closes its own before it "
                                   "exits)";
        }
    }

    // Wait (3 s at most) until no child of the server is running any more.
    std::vector<pid_t> running;
    for (int i = 0; i < 300; ++i) {
        running.clear();
        for (pid_t child : support::children_of(server.pid())) {
            std::vector<std::string> stat = support::proc_stat(child);
            if (!stat.empty() && stat[0] != "Z")
                running.push_back(child);
        }
        if (running.empty())
            break;
        usleep(10000);
    }
    EXPECT_TRUE(running.empty()) << "a child of the server is still running 3 s after its client was answered: "
                                    "the child must _exit() once it has handled its connection, not fall through "
                                    "into the parent's loop";
    // The zombies that steps c and d leave: their exit status (field 52).
    for (pid_t child : support::children_of(server.pid())) {
        std::vector<std::string> stat = support::proc_stat(child);
        if (stat.size() > 49 && stat[0] == "Z") {
            EXPECT_EQ(stat[49], "0") << "child " << child << " exited with wait status " << stat[49]
                                     << ": it failed after answering (see the server's stderr below)";
        }
    }

    const std::string &out = server.out(200);
    std::size_t printed = 0;
    for (std::size_t at = out.find("GET /hello HTTP/1.1\n"); at != std::string::npos;
         at = out.find("GET /hello HTTP/1.1\n", at + 1))
        ++printed;
    EXPECT_EQ(printed, static_cast<std::size_t>(requests))
        << "each request should be printed exactly once with stdout a pipe (a child that "
           "exit()s flushes a copy of the parent's buffer: flush each line, _exit() in the "
           "child); stdout: "
        << ::testing::PrintToString(out);
    const std::string parent_line = "Parent PID (PPID): " + std::to_string(server.pid()) + "\n";
    std::size_t parent_lines = 0;
    for (std::size_t at = out.find(parent_line); at != std::string::npos; at = out.find(parent_line, at + 1))
        ++parent_lines;
    EXPECT_EQ(parent_lines, 1U) << "the server's \"" << parent_line.substr(0, parent_line.size() - 1) << "\" line "
                                << "was printed " << parent_lines
                                << " times by the time a child had answered: stdout is "
                                   "a pipe, so stdio keeps what printf() wrote in a buffer; flush it at once (a "
                                   "child that exit()s prints its copy again, and unflushed lines stay in the "
                                   "parent's buffer); stdout: "
                                << ::testing::PrintToString(out);
    for (std::size_t at = out.find("terminated with status "); at != std::string::npos;
         at = out.find("terminated with status ", at + 1)) {
        EXPECT_EQ(out.compare(at, 25, "terminated with status 0\n"), 0)
            << "a child did not exit with status 0: " << out.substr(at, out.find('\n', at) - at);
    }

    const std::string &err = server.err(100);
    EXPECT_TRUE(err.empty() || err == allowed_stderr)
        << "the server wrote on stderr: " << ::testing::PrintToString(err)
        << (err.find("Bad file descriptor") != std::string::npos
                ? ": a child that does not _exit() after its request falls through into the parent's loop and "
                  "closes (or accepts on) a descriptor it already closed"
                : "");
}

// The child closes its copy of the listening socket: only the parent accepts,
// and a child left behind would keep the port. The client sends nothing at
// first, so the child waits in recv() and can be looked at.
inline void expect_child_closes_the_listener(support::ServerProcess &server)
{
    std::vector<std::string> listener = support::sockets_of(server.pid());
    ASSERT_EQ(listener.size(), 1U) << "the server should hold its listening socket and nothing else yet";
    support::Fd client = support::connect_to(server.port());
    ASSERT_NE(client.get(), -1);
    pid_t child = -1;
    for (int i = 0; i < 200 && child == -1; ++i) {
        std::vector<pid_t> children = support::children_of(server.pid());
        if (!children.empty())
            child = children.front();
        else
            usleep(10000);
    }
    ASSERT_NE(child, -1) << "the server forked no child within 2 s of a connection";
    bool holds_listener = true;
    for (int i = 0; i < 200 && holds_listener; ++i) {
        std::vector<std::string> sockets = support::sockets_of(child);
        holds_listener = std::find(sockets.begin(), sockets.end(), listener.front()) != sockets.end();
        if (holds_listener)
            usleep(10000);
    }
    EXPECT_FALSE(holds_listener) << "the child still holds the listening socket 2 s after fork(): only the parent "
                                    "accepts, so the child closes its copy first (a child left behind would keep "
                                    "the port)";
    const std::string_view request = "GET /hello HTTP/1.1\r\n\r\n";
    ASSERT_EQ(write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    EXPECT_TRUE(support::readable_within(client.get(), 3000));
}

#define WORKSHOP_CHILD_TESTS(step, Suite, requests, parent_closes, allowed_stderr)       \
    TEST(Suite##Child, AnswersPrintsEachRequestOnceAndExitsWithStatusZero)               \
    {                                                                                    \
        auto options = support::options_for_test<step::Options>(step::parse_options);    \
        support::ServerProcess server([&] { step::serve_forever(options); });            \
        ASSERT_GT(server.port(), 0);                                                     \
        expect_child_answers_and_exits(server, requests, parent_closes, allowed_stderr); \
    }                                                                                    \
    TEST(Suite##Child, ClosesTheListeningSocket)                                         \
    {                                                                                    \
        auto options = support::options_for_test<step::Options>(step::parse_options);    \
        support::ServerProcess server([&] { step::serve_forever(options); });            \
        ASSERT_GT(server.port(), 0);                                                     \
        expect_child_closes_the_listener(server);                                        \
    }
