// Step b: the command line, with --sleep (the article's 60 seconds by default).
#include "server_checks.hpp"

namespace step_b {
#include "step_b_sleeping/webserver3b.cpp"
}

WORKSHOP_COMMON_SERVER_TESTS(step_b, StepB, kArticlesBacklog)
WORKSHOP_SLEEP_OPTION_TESTS(step_b, StepB, 60.0)
