// shim.cpp: what make check preloads into a participant's server (LD_PRELOAD),
// to observe what only the running program can tell:
//
//   - which function the server installs as its SIGCHLD handler, and how
//     (sigaction() or signal(), its flags): the checks then read that
//     function's calls as the compiler compiled them (tools/checks/code.py);
//   - whether the handler leaves errno as it found it. A forced fault makes
//     this certain: while the handler runs, every successful wait(),
//     waitpid(), wait3(), wait4(), waitid() and write() sets errno anyway (POSIX
//     lets a successful call leave any value in errno), so a handler that
//     does not save and restore errno always changes it;
//   - whether a child ends with exit() (or by returning from main()) rather
//     than _exit(): exit() runs the exit handlers that the child inherited
//     from its parent, and this shim registers one in the parent.
//
// It writes one line per event to the file named by WORKSHOP_SHIM_LOG:
//   PID installed sigaction|signal OFFSET BASE FLAGS
//   PID handler-ran
//   PID errno-changed VALUE
//   PID exit-in-child
//   PID in-handler CALL      (wait, waitpid, wait3, wait4 or waitid, called by the handler)
//   PID blocks-sigchld        (sigprocmask() or pthread_sigmask() blocked SIGCHLD: a design that
//                              takes the signal only in ppoll() or from a signalfd)
//   PID forked CHILD          (fork() returned CHILD in PID: every child counted, however short
//                              its life, where sampling /proc would miss one that lives a millisecond)
// OFFSET is the handler's address minus BASE, the address where the object
// that holds it (the program) is loaded (dladdr()). Everything it does inside
// a handler is async-signal-safe: write() of a line formatted by hand.
//
// The shim changes nothing the server can see: the handler runs as installed,
// and errno is put back as it was when the signal arrived. It loads only into
// a dynamically linked program (a static one ignores LD_PRELOAD), so make
// check builds the participant's file dynamically.

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int log_fd = -1;
pid_t main_pid = 0;
volatile sig_atomic_t in_handler = 0;

// A value no system call sets, and that the forced fault does not use: if
// errno still holds it after the handler, the handler restored it.
constexpr int SENTINEL = 4093;
constexpr int FORCED = EOVERFLOW;  // What a successful call leaves in errno during the handler.

using Handler = void (*)(int);
using Action = void (*)(int, siginfo_t *, void *);
Handler chld_handler = nullptr;
Action chld_action = nullptr;

// The C library's own functions, found once, in start(): never looked up
// inside a handler.
int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
sighandler_t (*real_signal)(int, sighandler_t);
pid_t (*real_wait)(int *);
pid_t (*real_waitpid)(pid_t, int *, int);
pid_t (*real_wait3)(int *, int, struct rusage *);
pid_t (*real_wait4)(pid_t, int *, int, struct rusage *);
int (*real_waitid)(idtype_t, id_t, siginfo_t *, int);
ssize_t (*real_write)(int, const void *, size_t);
int (*real_sigprocmask)(int, const sigset_t *, sigset_t *);
int (*real_pthread_sigmask)(int, const sigset_t *, sigset_t *);
pid_t (*real_fork)();

template <typename Function>
void find(Function &function, const char *name)
{
    function = reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

char *put_text(char *to, const char *text)
{
    while (*text)
        *to++ = *text++;
    return to;
}

char *put_number(char *to, unsigned long number, unsigned base = 10)
{
    char digits[32];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[number % base];
        number /= base;
    } while (number != 0);
    while (n > 0)
        *to++ = digits[--n];
    return to;
}

// One line: "PID WORD [NUMBER...]\n", written with one write().
void note(const char *word, const unsigned long *numbers = nullptr, int count = 0)
{
    if (log_fd == -1)
        return;
    int saved = errno;
    char line[160];
    char *end = put_number(line, static_cast<unsigned long>(getpid()));
    *end++ = ' ';
    end = put_text(end, word);
    for (int i = 0; i < count; ++i) {
        *end++ = ' ';
        end = put_number(end, numbers[i]);
    }
    *end++ = '\n';
    ssize_t written = real_write(log_fd, line, static_cast<size_t>(end - line));
    static_cast<void>(written);
    errno = saved;
}

void after_handler(int outer)
{
    if (errno != SENTINEL) {
        unsigned long value = static_cast<unsigned long>(errno);
        note("errno-changed", &value, 1);
    }
    errno = outer;
}

void trampoline(int signal_number)
{
    int outer = errno;
    note("handler-ran");
    errno = SENTINEL;
    in_handler = 1;
    chld_handler(signal_number);
    in_handler = 0;
    after_handler(outer);
}

void trampoline_info(int signal_number, siginfo_t *info, void *context)
{
    int outer = errno;
    note("handler-ran");
    errno = SENTINEL;
    in_handler = 1;
    chld_action(signal_number, info, context);
    in_handler = 0;
    after_handler(outer);
}

void note_installed(const char *how, void *function, int flags)
{
    Dl_info info{};
    unsigned long base = 0;
    if (dladdr(function, &info) != 0)
        base = reinterpret_cast<unsigned long>(info.dli_fbase);
    unsigned long numbers[] = {reinterpret_cast<unsigned long>(function) - base, base,
                               static_cast<unsigned long>(flags)};
    note(how, numbers, 3);
}

void on_exit_handlers()
{
    if (getpid() != main_pid)
        note("exit-in-child");
}

__attribute__((constructor)) void start()
{
    find(real_sigaction, "sigaction");
    find(real_signal, "signal");
    find(real_wait, "wait");
    find(real_waitpid, "waitpid");
    find(real_wait3, "wait3");
    find(real_wait4, "wait4");
    find(real_waitid, "waitid");
    find(real_write, "write");
    find(real_sigprocmask, "sigprocmask");
    find(real_pthread_sigmask, "pthread_sigmask");
    find(real_fork, "fork");
    main_pid = getpid();
    const char *path = getenv("WORKSHOP_SHIM_LOG");
    if (path == nullptr)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1)
        return;
    // Keep the log on the highest descriptor allowed, out of the server's way
    // (it may count its descriptors, or run out of them on purpose).
    rlimit limit{};
    int high = -1;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur > 4)
        high = fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(limit.rlim_cur) - 1);
    if (high != -1) {
        close(fd);
        fd = high;
    }
    log_fd = fd;
    atexit(on_exit_handlers);
}

// While the handler runs, a successful call leaves FORCED in errno.
template <typename Result>
Result forced(Result result)
{
    if (in_handler && result != static_cast<Result>(-1))
        errno = FORCED;
    return result;
}

// A call to collect a child, made by the handler: noted (a handler that only
// takes note of the signal makes none).
void note_collecting(const char *call)
{
    if (!in_handler)
        return;
    char word[32] = "in-handler-";
    char *end = word + 11;
    while (*call != '\0' && end < word + sizeof word - 1)
        *end++ = *call++;
    *end = '\0';
    note(word);
}

}  // namespace

extern "C" {

int sigaction(int signal_number, const struct sigaction *action, struct sigaction *old)
{
    if (signal_number != SIGCHLD || action == nullptr)
        return real_sigaction(signal_number, action, old);
    struct sigaction wrapped = *action;
    if (action->sa_flags & SA_SIGINFO) {
        note_installed("installed-sigaction", reinterpret_cast<void *>(action->sa_sigaction), action->sa_flags);
        chld_action = action->sa_sigaction;
        wrapped.sa_sigaction = trampoline_info;
    } else if (action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN) {
        note_installed("installed-sigaction", reinterpret_cast<void *>(action->sa_handler), action->sa_flags);
        chld_handler = action->sa_handler;
        wrapped.sa_handler = trampoline;
    }
    return real_sigaction(signal_number, &wrapped, old);
}

sighandler_t signal(int signal_number, sighandler_t handler)
{
    if (signal_number != SIGCHLD || handler == SIG_DFL || handler == SIG_IGN || handler == SIG_ERR)
        return real_signal(signal_number, handler);
    note_installed("installed-signal", reinterpret_cast<void *>(handler), SA_RESTART);
    chld_handler = handler;
    return real_signal(signal_number, trampoline);
}

pid_t wait(int *status)
{
    note_collecting("wait");
    return forced(real_wait(status));
}

pid_t waitpid(pid_t pid, int *status, int options)
{
    note_collecting("waitpid");
    return forced(real_waitpid(pid, status, options));
}

pid_t wait3(int *status, int options, struct rusage *usage)
{
    note_collecting("wait3");
    return forced(real_wait3(status, options, usage));
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage)
{
    note_collecting("wait4");
    return forced(real_wait4(pid, status, options, usage));
}

int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
    note_collecting("waitid");
    return forced(real_waitid(type, id, info, options));
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    if (set != nullptr && how != SIG_UNBLOCK && sigismember(set, SIGCHLD) == 1)
        note("blocks-sigchld");
    return real_sigprocmask(how, set, old);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    if (set != nullptr && how != SIG_UNBLOCK && sigismember(set, SIGCHLD) == 1)
        note("blocks-sigchld");
    return real_pthread_sigmask(how, set, old);
}

pid_t fork()
{
    pid_t child = real_fork();
    if (child > 0) {
        unsigned long number = static_cast<unsigned long>(child);
        note("forked", &number, 1);  // note() leaves errno as it found it.
    }
    return child;
}

ssize_t write(int fd, const void *data, size_t size)
{
    return forced(real_write(fd, data, size));
}

}  // extern "C"
