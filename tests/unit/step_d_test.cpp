// Step d: the command line and the answer (its failures are shown end to end,
// in tests/e2e/test_step_d.py, since they need real limits and real clients).
#include "server_checks.hpp"

namespace step_d {
#include "step_d_no_close/webserver3d.cpp"
}

WORKSHOP_COMMON_SERVER_TESTS(step_d, StepD, kArticlesBacklog)
WORKSHOP_CHILD_TESTS(step_d, StepD, 2, false, "")
