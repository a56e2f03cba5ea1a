// Step d: the command line and the answer. Its failures need real limits and
// real clients, so they are shown end to end: step d's checks in
// tools/checks/ (run by tests/e2e/test_matrix.py), test_article_runs.py and
// test_process_limit.py.
#include "server_checks.hpp"

namespace step_d {
#include "step_d_no_close/webserver3d.cpp"
}

WORKSHOP_COMMON_SERVER_TESTS(step_d, StepD, kArticlesBacklog)
WORKSHOP_CHILD_TESTS(step_d, StepD, 2, false, "")
