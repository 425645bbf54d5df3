/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * test_stop.c - the stop watchdog (ketenbus/stop.h), each case in a forked
 * child whose stderr comes back through a pipe: a stop that hangs past
 * KETENBUS_STOP_TIMEOUT ends with KB_STOP_EXIT_FORCED and one error line; a
 * second signal ends it at once; a clean stop is not delayed; 0 waits
 * forever; invalid values are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/stop.h"

/* What the child does after its first SIGTERM. */
enum child_mode {
    HANG,    /* never stops, like a router stuck in librdkafka */
    CLEAN,   /* stops cleanly at once: exit(0) */
    FORWARD, /* HANG, with a grandchild in its own process group (kb_stop_forward) */
};

/* The grandchild of FORWARD writes 'T' here when a SIGTERM reaches it. */
static int fwd_pipe[2] = {-1, -1};

static void grandchild_on_term(int sig)
{
    (void)sig;
    char t = 'T';
    ssize_t n = write(fwd_pipe[1], &t, 1);
    (void)n;
    _exit(0);
}

struct child {
    pid_t pid;
    int err_fd; /* read end of the child's stderr */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fork a child with KETENBUS_STOP_TIMEOUT=@p timeout (NULL: unset) that
 * installs the watchdog, raises SIGTERM and goes on as @p mode says.
 * Returns once the child's handler has set its stop flag. */
static struct child start_child(const char *timeout, enum child_mode mode)
{
    struct child c = {-1, -1};
    int err_pipe[2], ready_pipe[2];
    if (pipe(err_pipe) || pipe(ready_pipe))
        return c;
    c.pid = fork();
    if (c.pid == 0) {
        dup2(err_pipe[1], STDERR_FILENO);
        close(err_pipe[0]);
        close(err_pipe[1]);
        close(ready_pipe[0]);
        if (timeout)
            setenv("KETENBUS_STOP_TIMEOUT", timeout, 1);
        else
            unsetenv("KETENBUS_STOP_TIMEOUT");
        static atomic_int stop;
        char errstr[256];
        if (kb_stop_signals(&stop, "test", "test effect", errstr, sizeof errstr))
            _exit(90);
        if (mode == FORWARD) {
            pid_t g = fork();
            if (g == 0) {
                setpgid(0, 0);
                signal(SIGTERM, grandchild_on_term);
                int devnull = open("/dev/null", O_WRONLY);
                dup2(devnull, STDERR_FILENO); /* the test reads the child's stderr to its end */
                alarm(10);                    /* never outlive the test */
                for (;;)
                    pause();
            }
            if (g < 0 || kb_stop_forward(g))
                _exit(92);
        }
        raise(SIGTERM); /* the handler has run when raise returns */
        char ok = atomic_load(&stop) ? 'y' : 'n';
        if (write(ready_pipe[1], &ok, 1) != 1 || ok != 'y')
            _exit(91);
        if (mode == CLEAN)
            exit(0); /* atexit handlers and all: the watchdog must not hold this up */
        for (;;)
            pause(); /* ignores the flag: a stop that never ends */
    }
    close(err_pipe[1]);
    close(ready_pipe[1]);
    c.err_fd = err_pipe[0];
    char ok = 0;
    ssize_t n;
    do
        n = read(ready_pipe[0], &ok, 1);
    while (n < 0 && errno == EINTR);
    close(ready_pipe[0]);
    CHECK(n == 1 && ok == 'y');
    return c;
}

/* Wait up to @p limit_ms for the child to end. 0 with its status and how
 * long it took, -1 when it is still running. */
static int wait_exit(pid_t pid, long long limit_ms, int *status, long long *took_ms)
{
    long long t0 = now_ms();
    for (;;) {
        if (waitpid(pid, status, WNOHANG) == pid) {
            *took_ms = now_ms() - t0;
            return 0;
        }
        if (now_ms() - t0 > limit_ms)
            return -1;
        usleep(10 * 1000);
    }
}

/* Everything the (ended) child wrote to stderr. */
static void read_stderr(struct child *c, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(c->err_fd, buf + len, cap - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(c->err_fd);
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The child must end within @p limit_ms: 0 with its status and how long it
 * took; otherwise the check fails, the child is killed and -1 returned. */
static int ends_within(pid_t pid, long long limit_ms, int *status, long long *took_ms)
{
    int ended = wait_exit(pid, limit_ms, status, took_ms);
    CHECK_INT(ended, 0);
    if (ended)
        reap(pid);
    return ended;
}

/* A stop that hangs ends at the deadline: status 3, one error line. */
static void test_deadline(void)
{
    long long t0 = now_ms();
    struct child c = start_child("1", HANG);
    CHECK(c.pid > 0);
    int status = 0;
    long long took = 0;
    if (ends_within(c.pid, 3000, &status, &took))
        return;
    took = now_ms() - t0;
    CHECK(took >= 900 && took <= 3000);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), KB_STOP_EXIT_FORCED);
    char err[4096];
    read_stderr(&c, err, sizeof err);
    CHECK(strstr(err, "level=error comp=test") != NULL);
    CHECK(strstr(err, "stop took longer than 1 s") != NULL);
    CHECK(strstr(err, "reason=stop-timeout") != NULL);
    CHECK(strstr(err, "exit_status=3") != NULL);
    CHECK(strstr(err, "effect=\"test effect\"") != NULL);
    const char *nl = strchr(err, '\n');
    CHECK(nl != NULL && nl[1] == '\0'); /* exactly one line */
}

/* A forced exit passes a SIGTERM on to the children it was told about. */
static void test_forward(void)
{
    CHECK_INT(pipe(fwd_pipe), 0);
    struct child c = start_child("1", FORWARD);
    CHECK(c.pid > 0);
    close(fwd_pipe[1]);
    int status = 0;
    long long took = 0;
    if (ends_within(c.pid, 3000, &status, &took) == 0)
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == KB_STOP_EXIT_FORCED);
    struct pollfd pfd = {fwd_pipe[0], POLLIN, 0};
    char t = 0;
    CHECK(poll(&pfd, 1, 2000) == 1 && read(fwd_pipe[0], &t, 1) == 1);
    CHECK(t == 'T');
    close(fwd_pipe[0]);
    char err[4096];
    read_stderr(&c, err, sizeof err);
}

/* A second signal (SIGINT here) during the stop ends it at once. */
static void test_second_signal(const char *timeout)
{
    struct child c = start_child(timeout, HANG);
    CHECK(c.pid > 0);
    usleep(200 * 1000); /* the first signal's stop is under way */
    kill(c.pid, SIGINT);
    int status = 0;
    long long took = 0;
    if (ends_within(c.pid, 1000, &status, &took))
        return;
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), KB_STOP_EXIT_FORCED);
    char err[4096];
    read_stderr(&c, err, sizeof err);
    CHECK(strstr(err, "second stop signal during the stop") != NULL);
    CHECK(strstr(err, "reason=second-signal") != NULL);
    CHECK(strstr(err, "exit_status=3") != NULL);
}

/* A clean stop right after the signal exits 0 at once, without the line. */
static void test_clean_exit(void)
{
    struct child c = start_child(NULL, CLEAN);
    CHECK(c.pid > 0);
    int status = 0;
    long long took = 0;
    if (ends_within(c.pid, 2000, &status, &took))
        return;
    CHECK(took < 1000);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
    char err[4096];
    read_stderr(&c, err, sizeof err);
    CHECK(strstr(err, "without a clean stop") == NULL);
}

/* KETENBUS_STOP_TIMEOUT=0: no deadline, the stop may take as long as it does. */
static void test_no_deadline(void)
{
    struct child c = start_child("0", HANG);
    CHECK(c.pid > 0);
    int status = 0;
    long long took = 0;
    CHECK_INT(wait_exit(c.pid, 2000, &status, &took), -1); /* still there after 2 s */
    kill(c.pid, SIGKILL);
    CHECK_INT(wait_exit(c.pid, 2000, &status, &took), 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char err[4096];
    read_stderr(&c, err, sizeof err);
    CHECK(strstr(err, "without a clean stop") == NULL);
}

static kb_err_t timeout_of(const char *value, unsigned *seconds)
{
    char errstr[256];
    if (value)
        setenv("KETENBUS_STOP_TIMEOUT", value, 1);
    else
        unsetenv("KETENBUS_STOP_TIMEOUT");
    *seconds = 12345;
    kb_err_t err = kb_stop_timeout_env(seconds, errstr, sizeof errstr);
    if (err)
        CHECK(strstr(errstr, "KETENBUS_STOP_TIMEOUT") != NULL);
    return err;
}

static void test_env_values(void)
{
    unsigned s;
    CHECK_INT(timeout_of(NULL, &s), KB_OK);
    CHECK_INT(s, KB_STOP_TIMEOUT_DEFAULT);
    CHECK_INT(timeout_of("0", &s), KB_OK);
    CHECK_INT(s, 0);
    CHECK_INT(timeout_of("7", &s), KB_OK);
    CHECK_INT(s, 7);
    CHECK_INT(timeout_of("86400", &s), KB_OK);
    CHECK_INT(s, 86400);
    static const char *const bad[] = {"", "-1", "abc", "5s", " 5", "1.5", "86401", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(timeout_of(bad[i], &s), KB_ERR_CONF);
    unsetenv("KETENBUS_STOP_TIMEOUT");
}

/* An invalid value installs nothing; the second install is refused. */
static void test_install_errors(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        static atomic_int stop;
        char errstr[256];
        setenv("KETENBUS_STOP_TIMEOUT", "soon", 1);
        if (kb_stop_signals(&stop, "test", "x", errstr, sizeof errstr) != KB_ERR_CONF)
            _exit(10);
        setenv("KETENBUS_STOP_TIMEOUT", "5", 1);
        if (kb_stop_signals(&stop, "test", "x", errstr, sizeof errstr) != KB_OK)
            _exit(11);
        if (kb_stop_signals(&stop, "test", "x", errstr, sizeof errstr) != KB_ERR_STATE)
            _exit(12);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_INT(WEXITSTATUS(status), 0);
}

int main(void)
{
    test_env_values();
    test_install_errors();
    test_deadline();
    test_second_signal("30");
    test_second_signal("0"); /* no deadline, but a second signal still ends it */
    test_clean_exit();
    test_no_deadline();
    test_forward();
    KB_TEST_DONE();
}
