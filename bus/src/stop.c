/* SPDX-License-Identifier: EUPL-1.2 */
/*
 * stop.c - the stop watchdog (see ketenbus/stop.h): one SIGINT/SIGTERM
 * handler for every long-running command and adapter, and a bound on how
 * long the clean stop after it may take.
 *
 * Why a bound: a clean stop waits on Kafka (the router's last transaction,
 * consumer close, flushes), and some librdkafka calls ignore their timeout
 * while a coordinator is unreachable (send_offsets_to_transaction, librdkafka
 * issue #5456). An operator's SIGKILL would end such a process without a
 * word; the watchdog ends it a little earlier, with one line saying why.
 * Cutting a stop short is safe for the bus: routed events sit in an open
 * transaction that the next owner fences and aborts, adapters acknowledge a
 * sender only after Kafka holds the event, and webhook calls are repeated
 * with the same idempotency key.
 *
 *     INSTALLED --first signal (on_stop_signal: *stop = 1, post)--> STOPPING
 *     STOPPING  --the caller's clean stop returns from main()------> exited
 *     STOPPING  --deadline passes, or a second signal (post)
 *                 (watchdog_main: log one line, _exit(3))-----------> exited
 *
 * Invariants:
 *  1. The handler only stores to the stop flag and calls sem_post(), both
 *     async-signal-safe; logging and the clock live on the watchdog thread.
 *  2. Each signal posts once, so the watchdog's first wait ends at the first
 *     signal and its second at the next one, even when both came at once.
 *  3. The watchdog thread is detached and blocks every signal: a normal exit
 *     never waits for it, and signals are handled on the other threads.
 */
#define _GNU_SOURCE /* sem_clockwait: a deadline on CLOCK_MONOTONIC */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ketenbus/log.h"
#include "ketenbus/stop.h"

#define ENV_NAME "KETENBUS_STOP_TIMEOUT"

static atomic_int *stop_flag;   /* the caller's flag; set before the handler exists */
static sem_t stop_sem;          /* one post per SIGINT/SIGTERM (invariant 2) */
static unsigned stop_timeout_s; /* the deadline after the first signal; 0: none */
static const char *stop_comp;   /* component of the forced-exit line */
static const char *stop_effect; /* what a cut-short stop means, for that line */
static atomic_int installed;    /* kb_stop_signals ran (it runs once) */
#define MAX_FORWARD 8
static atomic_int forward[MAX_FORWARD]; /* children told on a forced exit; 0: free */

kb_err_t kb_stop_timeout_env(unsigned *seconds, char *errstr, size_t errstr_size)
{
    const char *env = getenv(ENV_NAME);
    *seconds = KB_STOP_TIMEOUT_DEFAULT;
    if (!env)
        return KB_OK;
    /* Digits only: strtoul would take "-1", " 5" or "5s" without a word. */
    size_t len = strlen(env);
    if (len == 0 || len > 9 || strspn(env, "0123456789") != len ||
        strtoul(env, NULL, 10) > KB_STOP_TIMEOUT_MAX)
        return kb_err_set(KB_ERR_CONF, errstr, errstr_size,
                          ENV_NAME "=\"%.32s\": want whole seconds from 0 to %d "
                                   "(0: no deadline; unset: %d)",
                          env, KB_STOP_TIMEOUT_MAX, KB_STOP_TIMEOUT_DEFAULT);
    *seconds = (unsigned)strtoul(env, NULL, 10);
    return KB_OK;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    int saved = errno; /* sem_post may set it; the interrupted code may read it */
    atomic_store(stop_flag, 1);
    sem_post(&stop_sem);
    errno = saved;
}

/* Wait for one post, until @p deadline (CLOCK_MONOTONIC) when not NULL.
 * 0 on a post, -1 when the deadline passed. */
static int wait_signal(const struct timespec *deadline)
{
    for (;;) {
        int rc = deadline ? sem_clockwait(&stop_sem, CLOCK_MONOTONIC, deadline)
                          : sem_wait(&stop_sem);
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1; /* ETIMEDOUT (EINVAL cannot happen: the deadline is valid) */
    }
}

static long long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    wait_signal(NULL); /* the first signal: the clean stop begins */
    struct timespec begun, deadline;
    clock_gettime(CLOCK_MONOTONIC, &begun);
    deadline = begun;
    deadline.tv_sec += (time_t)stop_timeout_s;
    int second = wait_signal(stop_timeout_s ? &deadline : NULL) == 0;
    char msg[160];
    if (second)
        snprintf(msg, sizeof msg, "second stop signal during the stop: exiting without a clean "
                                  "stop");
    else
        snprintf(msg, sizeof msg, "stop took longer than %u s: exiting without a clean stop",
                 stop_timeout_s);
    KB_LOG_ERR(stop_comp, msg,
               "reason=%s stop_timeout_s=%u waited_ms=%lld exit_status=%d effect=\"%s\"",
               second ? "second-signal" : "stop-timeout", stop_timeout_s, elapsed_ms(&begun),
               KB_STOP_EXIT_FORCED, stop_effect);
    for (int i = 0; i < MAX_FORWARD; i++) {
        int pid = atomic_load(&forward[i]);
        if (pid > 0)
            kill((pid_t)pid, SIGTERM);
    }
    _exit(KB_STOP_EXIT_FORCED);
}

int kb_stop_forward(pid_t pid)
{
    for (int i = 0; i < MAX_FORWARD; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&forward[i], &free_slot, (int)pid))
            return 0;
    }
    return -1;
}

void kb_stop_forget(pid_t pid)
{
    for (int i = 0; i < MAX_FORWARD; i++) {
        int want = (int)pid;
        atomic_compare_exchange_strong(&forward[i], &want, 0);
    }
}

kb_err_t kb_stop_signals(atomic_int *stop, const char *component, const char *consequence,
                         char *errstr, size_t errstr_size)
{
    unsigned timeout_s;
    kb_err_t err = kb_stop_timeout_env(&timeout_s, errstr, errstr_size);
    if (err)
        return err;
    if (atomic_exchange(&installed, 1))
        return kb_err_set(KB_ERR_STATE, errstr, errstr_size, "stop handling installed twice");
    stop_flag = stop;
    stop_timeout_s = timeout_s;
    stop_comp = component;
    stop_effect = consequence;
    if (sem_init(&stop_sem, 0, 0) != 0)
        goto out_uninstalled;
    /* The thread inherits this mask: all signals blocked (invariant 3). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, watchdog_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        goto out_sem;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return KB_OK;

out_sem:
    sem_destroy(&stop_sem);
out_uninstalled:
    atomic_store(&installed, 0);
    return kb_err_set(KB_ERR_NOMEM, errstr, errstr_size, "cannot start the stop watchdog: %s",
                      strerror(errno));
}
