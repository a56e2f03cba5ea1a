// Step f: accept() is restarted, but one wait() per signal leaves zombies,
// because signals of one kind are not queued.
#include "server_checks.hpp"

namespace step_f {
#include "step_f_eintr/webserver3f.cpp"
}

WORKSHOP_COMMON_SERVER_TESTS(step_f, StepF, kBurstBacklog)
WORKSHOP_CHILD_TESTS(step_f, StepF, 2, true, "")
WORKSHOP_HANDLER_TESTS(step_f, StepF)
WORKSHOP_RESTART_TESTS(step_f, StepF)

TEST_F(StepFHandler, OneSignalForFiftyExitedChildrenCollectsOneAndLeavesFortyNineZombies)
{
    EXPECT_EQ(support::zombies_left_after_one_sigchld(step_f::install_grim_reaper, 50), 49);
}
