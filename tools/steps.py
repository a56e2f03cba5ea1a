"""The workshop's steps: one record each, the one place that says what a step is.

Everything that lists the steps derives the list from here or from the step
folders themselves (step_a_iterative, step_b_sleeping, ...): CMake and the
Makefile glob the folders; the harness, the checks, the exercises, the tour,
the room and the tests read this module, which finds the folders and pairs
each with its record (tests/e2e/test_house.py checks that every folder has
a record and every record a folder). Adding a step is a folder and a record;
its tour lesson and its unit test stay its own code, and the checks it uses
are behaviours in tools/checks/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Step:
    letter: str
    title: str  # A few words: the tour's heading, the report card.
    lesson: str  # What a participant sees in this step, in one line.
    checks: tuple[str, ...]  # The keys of the behaviours that `make check STEP=X` runs (tools/checks/).
    goal: str  # The exercise: what the participant's server must do.
    change: str  # The exercise: what to change from the starting point.
    hints: tuple[str, ...]  # Hints in order, after the ones the evidence chooses (tools/checks/).
    sleep: float | None = None  # The default of --sleep SECONDS, for the steps that take it.
    backlog: int = 5  # listen()'s backlog, as the article has it.
    lesson_stderr: str = ""  # What the server may print on stderr: its lesson, when that is a failure.
    options: tuple[str, ...] = ()  # Options beyond --port, --host and --help (other than --sleep).
    prints: tuple[str, ...] = ()  # The lines it prints besides the first and the requests (tools/checks/ LINES).
    handler_optional: bool = False  # A design without a SIGCHLD handler (signalfd, ppoll) is as good.
    folder: str = field(default="", compare=False)  # Filled in from the step folders.

    @property
    def program(self) -> str:
        return f"webserver3{self.letter}"

    @property
    def source(self) -> Path:
        """The reference server's source."""
        return REPO / self.folder / f"{self.program}.cpp"

    @property
    def readme(self) -> Path:
        return REPO / self.folder / "README.md"

    @property
    def previous(self) -> "Step | None":
        index = LETTERS.index(self.letter)
        return STEPS[LETTERS[index - 1]] if index else None

    @property
    def next(self) -> "Step | None":
        index = LETTERS.index(self.letter)
        return STEPS[LETTERS[index + 1]] if index + 1 < len(LETTERS) else None

    @property
    def takes_sleep(self) -> bool:
        return self.sleep is not None


RECORDS = [
    Step(
        "a", "an iterative server",
        "an iterative server answers 'Hello, World!' and prints the request",
        checks=("answers", "escapes", "reset", "restarts", "options", "backlog"),
        goal="Write an iterative web server: it accepts one connection, reads the request, prints it, "
             "answers 'Hello, World!' and closes the connection, then goes back for the next one. "
             "One client at a time.",
        change="The command line, the helpers and the response are written. Fill in the three functions "
               "marked TODO: create the listening socket (socket, SO_REUSEADDR, bind, listen, and "
               "getsockname for the port the kernel chose, then the first line, flushed), accept a "
               "connection, and handle a request (recv, print it escaped, send the response). Check "
               "every call against -1.",
        hints=("Follow the article's order: socket(AF_INET, SOCK_STREAM), setsockopt SO_REUSEADDR, bind to "
               "a sockaddr_in filled from options.address (parse_options converted --host) and options.port "
               "(htons), listen with REQUEST_QUEUE_SIZE.",
               "With --port 0 the kernel picks the port: getsockname() on the bound socket tells which; print "
               "'Serving HTTP on port N ...' with that number, then fflush(stdout) (the checks read a pipe).",
               "In handle_request: recv() up to 1024 bytes; escape_request() the bytes received into a "
               "char array, put() a newline after them, write() the lot to STDOUT_FILENO; then "
               "send_all(client_connection, HTTP_RESPONSE). A failure there is warn(), not fatal()."),
    ),
    Step(
        "b", "an iterative server that sleeps",
        "a second client connects at once but waits for the whole sleep",
        checks=("answers", "escapes", "second_waits", "reset", "options", "backlog", "sleep_default"),
        sleep=60,
        goal="Make the iterative server sleep after answering, to show that it serves one client at a "
             "time: a second client is accepted by the kernel (the backlog) but waits for the whole sleep.",
        change="Add a --sleep SECONDS option (fractions allowed, default 60), and after sending the answer, "
               "before closing the connection, pause that long: the first client's curl ends only when the "
               "sleep is over, and nobody calls accept() meanwhile.",
        hints=("The option parses like --port (parse_number(), with fractions allowed): a code of its own "
               "(SLEEP) in the enum, an entry in getopt_long's table and a case in the switch; --help must list it.",
               "nanosleep() can sleep fractions; when a signal interrupts it, it writes the time left into "
               "its second argument: loop while it fails with EINTR.",
               "The pause goes at the end of handle_request(), after the answer is sent: the connection is "
               "closed after the sleep, as in the article, and while it sleeps nobody calls accept()."),
    ),
    Step(
        "c", "fork(): a child per connection",
        "a child per connection: everyone is answered at once",
        checks=("answers", "escapes", "both_at_once", "child_pids", "lines_once", "child_exits", "parent_closes",
                "options", "backlog", "sleep_default"),
        sleep=60,
        prints=("parent", "child"),
        goal="Serve clients at once: fork a child per connection. The child answers (and sleeps), the "
             "parent only accepts and forks.",
        change="Print the parent's PID once before the loop. After accept(), fork(): the child closes the "
               "listening socket, handles the request (printing its PID and its parent's), sleeps, closes "
               "the connection and exits; the parent closes its copy of the connection and accepts again.",
        hints=("fork() returns 0 in the child and the child's PID in the parent; -1 is fatal('fork').",
               "Descriptors are duplicated by fork(): the child must close(listen_socket), the parent "
               "close(client_connection). The connection ends only when both copies are closed.",
               "End the child with _exit(EXIT_SUCCESS): without it the child runs on into the parent's loop, "
               "and exit() would flush the stdio buffers and run the exit handlers it inherited from the "
               "parent. fflush(stdout) after each printf, or the child inherits unflushed lines."),
    ),
    Step(
        "d", "duplicates not closed, children not collected",
        "curl never ends; out of descriptors; zombies; out of processes",
        checks=("escapes", "curl_hangs", "zombies", "emfile", "lines_once", "child_exits", "options", "backlog"),
        prints=("parent", "child", "held"),
        goal="Break the server on purpose, the article's way: the parent keeps its copy of each "
             "connection and collects no child. curl gets the body but never ends, descriptors run out "
             "('accept: Too many open files'), and zombies pile up.",
        change="Remove the parent's close of the connection, and instead count the connections it holds, "
               "printing 'Connections held open by the parent: N' after each fork. Remove the child's "
               "sleep and the --sleep option.",
        hints=("The only close the parent does after fork() is the one that ends the client's connection: "
               "that is the one to remove.",
               "The count is the parent's, printed after fork() in the parent branch with printf and "
               "fflush(stdout).",
               "accept() failing with EMFILE stays fatal, exactly as before: the lesson is the crash."),
    ),
    Step(
        "e", "a SIGCHLD handler, and EINTR",
        "the SIGCHLD handler interrupts accept(): the server dies",
        checks=("curl_ends", "reports_child", "eintr", "stopped_child", "handler_safe", "handler_errno", "escapes",
                "lines_once", "child_exits", "parent_closes", "options", "backlog", "sleep_default"),
        sleep=3,
        lesson_stderr="accept: Interrupted system call",
        prints=("parent", "child", "terminated"),
        goal="Collect every child with a SIGCHLD handler that calls wait(). Close the duplicates again. "
             "The server now dies at the first child's exit, with 'accept: Interrupted system call': "
             "reproducing that crash is the exercise.",
        change="Put back the parent's close of the connection. Install a SIGCHLD handler with sigaction(), "
               "without SA_RESTART, that calls wait() once and writes 'Child PID terminated with status S' "
               "with write(). Give the child a --sleep (default 3) so the parent is back in accept() when "
               "it exits.",
        hints=("sigaction(), not signal(): glibc's signal() (and std::signal) installs the handler with "
               "SA_RESTART, the BSD behaviour that the C library chooses (the raw Linux system call would "
               "not), so the kernel restarts accept() by itself and the crash never shows. "
               "sa_flags = SA_NOCLDSTOP (with SA_SIGINFO if you install it as sa_sigaction), never SA_RESTART.",
               "In a handler only async-signal-safe calls: wait() and write() are, printf() is not. Format "
               "the line into a char buffer by hand.",
               "Save errno on entry to the handler and restore it before returning: wait() may set ECHILD "
               "just as accept()'s caller reads errno."),
    ),
    Step(
        "f", "accept() restarted, and a burst",
        "accept() restarted, but a burst of 128 clients leaves zombies",
        checks=("curl_ends", "survives", "burst_zombies", "merged_zombies", "no_restart", "accept_fatal",
                "stopped_child", "handler_safe", "handler_errno", "escapes", "lines_once", "child_exits",
                "parent_closes", "options", "backlog"),
        backlog=1024,
        prints=("parent", "child", "terminated"),
        goal="Survive the signal: when accept() fails with EINTR nothing went wrong, so call it again. "
             "One request now leaves no zombie, but a burst of 128 clients does (signals merge).",
        change="In accept_connection, loop: retry accept() when it fails with EINTR, any other failure "
               "stays fatal. Remove the child's sleep and --sleep; the backlog grows to 1024.",
        hints=("Wrap accept() in a loop: when it returns a descriptor, return it; when it fails with errno "
               "EINTR, call it again; any other errno is still fatal(\"accept\").",
               "Keep the handler's single wait(): the zombies after a burst are this step's lesson.",
               "REQUEST_QUEUE_SIZE becomes 1024, so a burst of 128 is not dropped by the kernel."),
    ),
    Step(
        "g", "a waitpid() loop",
        "a waitpid() loop: no zombie, however many clients",
        checks=("curl_ends", "survives", "no_zombies", "merged_collected", "keeps_accepting", "low_nofile",
                "no_restart", "accept_fatal", "handler_safe", "handler_errno", "escapes", "lines_once", "child_exits",
                "parent_closes", "options", "backlog"),
        backlog=1024,
        prints=("parent", "child", "terminated"),
        goal="Collect every child, however many exit at once: the handler loops on waitpid() with WNOHANG "
             "until no exited child is left. Bursts of 128 clients leave no zombie.",
        change="Replace the handler's single wait() with a loop of waitpid(-1, ..., WNOHANG) calls, "
               "reporting each child it collects, until it returns 0 or -1.",
        hints=("One SIGCHLD can stand for many exited children: the handler must collect every one.",
               "waitpid(-1, &status, WNOHANG) returns 0 when children remain but none has exited: without "
               "WNOHANG the last call blocks the handler while other children still run.",
               "Keep saving and restoring errno around the loop, and report with write() only."),
    ),
    Step(
        "h", "the handler only takes note, the main loop reaps",
        "a self-pipe: the handler writes a byte, the main loop collects the children",
        checks=("curl_ends", "survives", "reaps_outside", "no_zombies", "merged_collected", "keeps_accepting",
                "pipe_nonblocking", "idle_quiet", "nonblocking", "with_restart", "low_nofile", "accept_fatal",
                "handler_safe", "handler_errno", "escapes", "lines_once", "child_exits", "parent_closes", "options",
                "backlog"),
        backlog=1024,
        prints=("parent", "child", "terminated"),
        handler_optional=True,
        goal="Take the work out of the signal handler: it only notes that a child has exited, by writing one "
             "byte into a pipe (the self-pipe trick); the main loop waits in poll() for the listening socket or "
             "the pipe, and when the pipe has a byte it collects every exited child and reports each one with "
             "ordinary printf().",
        change="Create a pipe, both ends non-blocking. The SIGCHLD handler saves errno, writes one byte into "
               "the pipe, restores errno. The loop polls the listening socket (now non-blocking: accept() may "
               "fail with EAGAIN) and the pipe's read end; on a note, it empties the pipe, then calls "
               "waitpid(-1, &status, WNOHANG) until it returns 0 or -1, printing 'Child X terminated with status "
               "S' with printf and fflush. poll() fails with EINTR after a handler: call it again.",
        hints=("The handler: int saved = errno; write(pipe_write_end, \"x\", 1); errno = saved; nothing else. A "
               "full pipe makes that write() fail with EAGAIN, which is fine: one note waiting is enough.",
               "poll() on two descriptors: the listening socket and the pipe's read end, both POLLIN. Linux never "
               "restarts poll() after a handler (signal(7)): on EINTR, loop.",
               "Empty the pipe before you reap (read until EAGAIN): a child that exits meanwhile writes a new "
               "note, and the next poll() wakes for it."),
    ),
    Step(
        "i", "a pool of workers instead of a fork per request",
        "--workers N processes accept on one listener; the parent replaces the dead",
        checks=("pool", "replaces_worker", "no_storm", "idle_workers", "idle_quiet", "answers", "escapes", "lines_once",
                "options", "backlog"),
        backlog=1024,
        options=("--workers",),
        prints=("parent", "child"),
        goal="Fork the children once, at the start: a pool of --workers N processes (4 by default), each "
             "looping on accept() on the listening socket they share, answering and closing as step a did. The "
             "parent accepts nothing: it waits for a worker to die, reports it, and forks another in its place.",
        change="Add --workers N (plain decimal, 1 to 1024, default 4). Fork N workers after creating the "
               "listening socket; each runs accept, handle_request, close for ever. The parent loops on wait(): "
               "for a worker killed by a signal, print 'Child X terminated with status S' and fork a new one. "
               "No SIGCHLD handler: the parent waits in wait() and nowhere else.",
        hints=("A worker's loop is step a's: accept(), handle_request(), close(). Several processes may wait in "
               "accept() on the same socket; the kernel gives each connection to one of them.",
               "The parent: for (;;) { pid = wait(&status); ... } and fork a replacement when WIFSIGNALED(status).",
               "Workers print 'Child PID: X. Parent PID P' per request, X being the worker: no process is "
               "created per request."),
    ),
    Step(
        "j", "one process, an event loop",
        "one process with epoll answers at once beside hundreds of idle clients",
        checks=("idle_clients", "one_process", "idle_quiet", "nonblocking", "stop_continue", "accept_fatal", "answers",
                "escapes", "lines_once", "options", "backlog"),
        backlog=1024,
        prints=("child",),
        goal="Serve every client from one process that never waits for any one of them: non-blocking sockets, "
             "and epoll (Linux's) to learn which socket is ready; the loop accepts new connections, reads a "
             "request when it has arrived, answers and closes. No fork(), no child.",
        change="Make the listening socket non-blocking and add it to an epoll instance. Loop on epoll_wait(): "
               "for the listener, accept until EAGAIN and add each new connection (non-blocking) to the set; for "
               "a connection, handle its request once it is there (recv until EAGAIN means not yet), answer and "
               "close it. epoll_wait() may fail with EINTR: call it again.",
        hints=("accept() and recv() on non-blocking sockets fail with EAGAIN when nothing is there: that is "
               "'not yet', not an error.",
               "close() a connection when it is done (answered, or its client gone: recv() returned 0): close() "
               "also takes it out of the epoll set, and its descriptor is free again.",
               "The one process prints 'Child PID: X. Parent PID Y' for each request with its own PID."),
    ),
]


def _folders() -> dict[str, str]:
    """letter -> step folder, for every folder named step_X_something."""
    found = {}
    for path in sorted(REPO.glob("step_?_*")):
        match = re.fullmatch(r"step_([a-z])_\w+", path.name)
        if match and path.is_dir():
            found[match.group(1)] = path.name
    return found


def _pair() -> dict[str, Step]:
    folders = _folders()
    steps = {}
    for record in RECORDS:
        if record.letter in folders:
            object.__setattr__(record, "folder", folders[record.letter])
            steps[record.letter] = record
    return steps


STEPS: dict[str, Step] = _pair()  # letter -> Step, in order: the steps that have both a folder and a record.
LETTERS = "".join(STEPS)  # "abcdefg": the steps' letters, in order.
FOLDERS_WITHOUT_RECORD = sorted(set(_folders()) - set(STEPS))
RECORDS_WITHOUT_FOLDER = sorted({r.letter for r in RECORDS} - set(_folders()))


def step(name: str) -> Step | None:
    """The step a participant means by `name`: 'e', 'E', 'step_e', 'step_e_sigchld', 'webserver3e'."""
    match = re.fullmatch(r"(?:step_)?([a-z])(?:_\w*)?|webserver3([a-z])", name.strip().lower())
    return STEPS.get(match.group(1) or match.group(2)) if match else None
