// Checks that every step's server must pass: its command line and its answer.
// Each step's test file includes its own server source and then expands these
// macros for it, so that one copy of the checks serves all seven steps.
#pragma once

#include "support.hpp"

// The contract's answer: no Content-Length, the body ends when the connection does.
inline constexpr std::string_view kExpectedResponse = "HTTP/1.1 200 OK\r\n\r\nHello, World!\n";

// parse_options(args) must print usage on stderr, matching pattern, and exit 2.
template <typename Parse>
void expect_usage_error(Parse parse, std::initializer_list<const char *> args, const char *pattern)
{
    support::Argv argv(args);
    EXPECT_EXIT(parse(argv.argc(), argv.argv()), ::testing::ExitedWithCode(2), pattern);
}

#define WORKSHOP_COMMON_SERVER_TESTS(step, Suite)                                                                    \
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
    TEST(Suite##Options, HostMayBeANameAsForClient3)                                                                 \
    {                                                                                                                \
        support::Argv args{"server", "--host", "localhost"};                                                         \
        auto options = step::parse_options(args.argc(), args.argv());                                                \
        EXPECT_STREQ(options.host, "localhost");                                                                     \
        EXPECT_EQ(ntohl(options.address.s_addr) >> 24, 127U) << "localhost should resolve to a loopback address";    \
    }                                                                                                                \
    TEST(Suite##Options, BadPortIsAUsageError)                                                                       \
    {                                                                                                                \
        for (const char *bad : {"abc", "70000", "-1", "", "80x", "65536", "1.5"}) {                                  \
            support::Argv args{"server", "--port", bad};                                                             \
            EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(2),                 \
                        "invalid port.*\nUsage:")                                                                    \
                << "--port " << bad;                                                                                 \
        }                                                                                                            \
    }                                                                                                                \
    TEST(Suite##Options, UnknownOptionMissingValueAndBadHostAreUsageErrors)                                          \
    {                                                                                                                \
        /* Anchored: the program's own message first, none from getopt_long() before it. */                          \
        expect_usage_error(step::parse_options, {"server", "--bogus"},                                               \
                           "^server: unknown option: --bogus\nUsage: server");                                       \
        expect_usage_error(step::parse_options, {"server", "-p", "80"}, "^server: unknown option: -p\nUsage:");      \
        expect_usage_error(step::parse_options, {"server", "--port"}, "^server: missing value for: --port\nUsage:"); \
        expect_usage_error(step::parse_options, {"server", "--port", "1", "extra"},                                  \
                           "^server: unexpected argument: extra\nUsage:");                                           \
        expect_usage_error(step::parse_options, {"server", "--host", "no-such-host.invalid"},                        \
                           "^server: cannot resolve host: no-such-host.invalid\nUsage:");                            \
    }                                                                                                                \
    TEST(Suite##Options, HelpExitsWithSuccess)                                                                       \
    {                                                                                                                \
        support::Argv args{"server", "--help"};                                                                      \
        EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(0), "");                \
    }                                                                                                                \
    TEST(Suite##Response, IsTheContractsBytesWithoutContentLength)                                                   \
    {                                                                                                                \
        EXPECT_EQ(step::HTTP_RESPONSE, kExpectedResponse);                                                           \
        EXPECT_EQ(step::HTTP_RESPONSE.find("Content-Length"), std::string_view::npos);                               \
    }

// Steps b, c and e take --sleep, with the article's default for that step.
#define WORKSHOP_SLEEP_OPTION_TESTS(step, Suite, default_seconds)                                       \
    TEST(Suite##Options, SleepDefaultsToTheArticlesAndTakesFractions)                                   \
    {                                                                                                   \
        support::Argv none{"server"};                                                                   \
        EXPECT_DOUBLE_EQ(step::parse_options(none.argc(), none.argv()).sleep_seconds, default_seconds); \
        support::Argv half{"server", "--sleep", "0.5"};                                                 \
        EXPECT_DOUBLE_EQ(step::parse_options(half.argc(), half.argv()).sleep_seconds, 0.5);             \
    }                                                                                                   \
    TEST(Suite##Options, BadSleepIsAUsageError)                                                         \
    {                                                                                                   \
        for (const char *bad : {"-1", "soon", "", "nan", "1e9"}) {                                      \
            support::Argv args{"server", "--sleep", bad};                                               \
            EXPECT_EXIT(step::parse_options(args.argc(), args.argv()), ::testing::ExitedWithCode(2),    \
                        "invalid number of seconds")                                                    \
                << "--sleep " << bad;                                                                   \
        }                                                                                               \
    }

// Steps e, f and g install a SIGCHLD handler, and it must be a careful one.
#define WORKSHOP_HANDLER_TESTS(step, Suite)                                                               \
    class Suite##Handler : public support::SigchldRestored {};                                            \
    TEST_F(Suite##Handler, IsInstalledWithSigactionAndWithoutSaRestart)                                   \
    {                                                                                                     \
        step::install_grim_reaper();                                                                      \
        struct sigaction current {};                                                                      \
        ASSERT_EQ(sigaction(SIGCHLD, nullptr, &current), 0);                                              \
        EXPECT_EQ(current.sa_handler, &step::grim_reaper);                                                \
        EXPECT_EQ(current.sa_flags &SA_RESTART, 0) << "SA_RESTART would hide the EINTR lesson";           \
        EXPECT_NE(current.sa_flags &SA_NOCLDSTOP, 0) << "a stopped child would block the handler";        \
    }                                                                                                     \
    TEST_F(Suite##Handler, RestoresErrnoWhenItsWaitFails)                                                 \
    {                                                                                                     \
        step::install_grim_reaper();                                                                      \
        errno = 12345;                                                                                    \
        ASSERT_EQ(raise(SIGCHLD), 0); /* No child: the handler's wait fails with ECHILD. */               \
        EXPECT_EQ(errno, 12345);                                                                          \
    }                                                                                                     \
    TEST_F(Suite##Handler, AnInterruptedAcceptStillReportsEintrAfterTheHandlerRan)                        \
    {                                                                                                     \
        step::install_grim_reaper();                                                                      \
        int port = 0;                                                                                     \
        support::Fd listener = support::listening_socket(&port);                                          \
        int result;                                                                                       \
        int error;                                                                                        \
        {                                                                                                 \
            support::SigchldFromAnotherThread signal_soon(100);                                           \
            result = accept(listener.get(), nullptr, nullptr);                                            \
            error = errno;                                                                                \
        }                                                                                                 \
        EXPECT_EQ(result, -1);                                                                            \
        EXPECT_EQ(error, EINTR) << "got " << std::strerror(error) << ": the handler clobbered errno";     \
    }                                                                                                     \
    TEST_F(Suite##Handler, CollectsAnExitedChildAndInterruptsABlockedAccept)                              \
    {                                                                                                     \
        step::install_grim_reaper();                                                                      \
        int port = 0;                                                                                     \
        support::Fd listener = support::listening_socket(&port);                                          \
        pid_t child = support::fork_child_exiting_after(100);                                             \
        ASSERT_NE(child, -1);                                                                             \
        int result = accept(listener.get(), nullptr, nullptr);                                            \
        int error = errno;                                                                                \
        EXPECT_EQ(result, -1);                                                                            \
        EXPECT_EQ(error, EINTR);                                                                          \
        EXPECT_EQ(waitpid(child, nullptr, WNOHANG), -1) << "the handler should have collected the child"; \
        EXPECT_EQ(errno, ECHILD);                                                                         \
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
        support::Fd connection(step::accept_connection(listener.get()));                              \
        EXPECT_NE(connection.get(), -1);                                                              \
        EXPECT_EQ(waitpid(exiting, nullptr, WNOHANG), -1) << "the child's exit came during accept()"; \
    }
