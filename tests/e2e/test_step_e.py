"""Step e: a SIGCHLD handler collects each child, but the signal interrupts the
parent's blocked accept(), which fails with EINTR, and the server dies."""

import harness


def test_e_the_first_childs_exit_kills_the_server_with_eintr(start):
    server = start("e", "--sleep", "0.5")
    result = harness.curl(server.port)
    assert result.returncode == 0 and result.stdout == "Hello, World!\n"
    assert server.wait_exit(10) == 1, "the server survived its child's exit"
    assert server.err.text() == "accept: Interrupted system call"
    (child,) = server.out.matches(r"^Child PID: (\d+)\.")
    assert server.out.matches(rf"^Child {child.group(1)} terminated with status 0$"), server.out.text()


def test_f_fix_the_server_lives_and_leaves_no_zombie(start):
    server = start("f")
    result = harness.curl(server.port)
    assert result.returncode == 0 and result.stdout == "Hello, World!\n"
    assert server.out.wait_for(r"^Child \d+ terminated with status 0$", 5)
    assert server.wait_until_all_collected() == []
    assert server.alive()
    assert harness.curl(server.port).stdout == "Hello, World!\n", "the server no longer answers"
