// Step a: the exact answer, the escaping of untrusted requests, the command line.
#include "server_checks.hpp"

// The step's own source, in a namespace of its own (see support.hpp).
namespace step_a {
#include "step_a_iterative/webserver3a.cpp"
}

using support::Fd;

// escape_request() into a buffer with room to spare, which must stay
// untouched beyond the 4 bytes per byte of request that the function promises.
static std::string escape_request(std::string_view request)
{
    const std::size_t room = 4 * request.size();
    std::string buffer(room + 16, '#');
    char *end = step_a::escape_request(request, buffer.data());
    EXPECT_LE(end - buffer.data(), static_cast<std::ptrdiff_t>(room)) << "more than 4 bytes for each byte";
    EXPECT_EQ(buffer.substr(room), std::string(16, '#')) << "written beyond the room it promises to use";
    return buffer.substr(0, static_cast<std::size_t>(end - buffer.data()));
}

WORKSHOP_COMMON_SERVER_TESTS(step_a, StepA, kArticlesBacklog)

TEST(StepAHandleRequest, AnswersTheExactBytesThenLeavesClosingToTheCaller)
{
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    Fd client(pair[0]);
    Fd server(pair[1]);
    const std::string_view request = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ASSERT_EQ(write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));

    step_a::handle_request(server.get());
    // handle_request() has answered but not closed: nothing beyond the answer
    // arrives, and no end of file either, until the connection is closed.
    char buffer[256];
    ssize_t n = read(client.get(), buffer, sizeof buffer);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string_view(buffer, static_cast<std::size_t>(n)), kExpectedResponse);
    EXPECT_FALSE(support::readable_within(client.get(), 100));
    server.reset();
    EXPECT_EQ(read(client.get(), buffer, sizeof buffer), 0);  // Now end of file.
}

TEST(StepAHandleRequest, AClientThatSendsNothingGetsNoAnswer)
{
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    Fd client(pair[0]);
    Fd server(pair[1]);
    ASSERT_EQ(shutdown(client.get(), SHUT_WR), 0);  // End of file, nothing sent.
    step_a::handle_request(server.get());
    server.reset();
    EXPECT_EQ(support::read_all(client.get()), "");
}

TEST(StepAEscapeRequest, KeepsPrintableTextAndTurnsCrlfIntoLineBreaks)
{
    EXPECT_EQ(escape_request("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), "GET /hello HTTP/1.1\nHost: x\n\n");
    EXPECT_EQ(escape_request("a plain line\n"), "a plain line\n");
}

TEST(StepAEscapeRequest, EscapesTerminalControlAndNonTextBytes)
{
    EXPECT_EQ(escape_request("\x1b[2J\x1b]0;owned\x07"), "\\x1b[2J\\x1b]0;owned\\x07");
    EXPECT_EQ(escape_request(std::string_view("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(escape_request("\xff\x80\x7f"), "\\xff\\x80\\x7f");
    EXPECT_EQ(escape_request("lone\rreturn"), "lone\\x0dreturn");  // Could rewrite the line.
    EXPECT_EQ(escape_request("tab\there"), "tab\\x09here");
    EXPECT_EQ(escape_request("back\\x1b"), "back\\\\x1b");  // A literal "\x1b" stays distinguishable.
}

TEST(StepAEscapeRequest, EveryOutputByteIsPrintableOrANewline)
{
    std::string all;
    for (int c = 0; c < 256; ++c)
        all += static_cast<char>(c);
    for (char c : escape_request(all)) {
        unsigned char u = static_cast<unsigned char>(c);
        EXPECT_TRUE(u == '\n' || (u >= 0x20 && u < 0x7f)) << "byte " << static_cast<int>(u);
    }
}
