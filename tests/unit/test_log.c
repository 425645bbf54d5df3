/* SPDX-License-Identifier: EUPL-1.2 */
/* test_log.c - kb_log writes one line per call whatever its string values
 * hold: control characters are escaped everywhere and quotes/backslashes
 * inside quoted values, while ordinary values come out exactly as printf
 * would write them (log parsers and tests rely on that). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "kb_test.h"
#include "ketenbus/log.h"

static char captured[8192];

/* Run @p fn with stderr caught into captured[]. */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/kb-test-log-XXXXXX";
    int fd = mkstemp(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, captured, sizeof captured - 1, 0);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

/* The line after "comp=" (the timestamp differs per call). */
static const char *after_ts(void)
{
    const char *p = strstr(captured, " level=");
    return p ? p : "";
}

static int count_lines(void)
{
    int n = 0;
    for (const char *p = captured; *p; p++)
        n += *p == '\n';
    return n;
}

static void log_ordinary(void)
{
    long long big = -1234567890123LL;
    kb_log(KB_LOG_WARN, "registry", "schema registered",
           "subject=%s version=%d id=%zu offset=%lld u=%u llu=%llu f=%.2f c=%c x=%x w=[%5s] "
           "l=[%-5s] p=[%.3s] s=[%*d] n=[%-*d] pct=100%% q=\"%s\" z=%zd",
           "nl.brp.persoon-geboren", 2, (size_t)100001, big, 7u, 18446744073709551615ULL, 3.14159,
           'k', 255u, "ab", "cd", "abcdef", 6, 42, 4, 7, "plain text", (ptrdiff_t)-3);
}

static void log_hostile(void)
{
    kb_log(KB_LOG_INFO, "registry", "schema registered", "subject=%s version=%d",
           "ok\nts=2026-01-01T00:00:00Z level=error comp=audit msg=\"forged\"", 1);
}

static void log_fields(void)
{
    kb_log(KB_LOG_INFO, "registry", "schema registered", "subject=%s version=%d empty=%s plain=%s",
           "orders-value comp=audit msg=\"audit chain verified\"", 1, "", "abc");
}

static void log_quoted(void)
{
    kb_log(KB_LOG_INFO, "c", "m", "reason=\"%s\" raw=%s ch=\"%c\"", "a\"b\\c\r\x01\x7f",
           "x\"y\\z\t", '"');
}

static void log_msg(void)
{
    /* librdkafka's messages reach kb_log as the message itself */
    kb_log(KB_LOG_ERROR, "rd\nkafka", "broker said \"no\"\nts=forged", "%s", "");
}

static void log_c1(void)
{
    kb_log(KB_LOG_INFO, "c", "m", "s=%s e=%s",
           "a\xc2\x85"
           "b",
           "caf\xc3\xa9");
}

static void log_long(void)
{
    static char big[5000];
    memset(big, '\n', sizeof big - 1);
    kb_log(KB_LOG_INFO, "c", "m", "v=%s", big);
}

static char expected_tail[1024];

static void expect_ordinary(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect_ordinary(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expected_tail, sizeof expected_tail, fmt, ap);
    va_end(ap);
}

int main(void)
{
    kb_log_set_level(KB_LOG_DEBUG);

    /* ordinary values: byte for byte what printf writes */
    capture(log_ordinary);
    long long big = -1234567890123LL;
    expect_ordinary(" level=warn comp=registry msg=\"schema registered\" "
                    "subject=%s version=%d id=%zu offset=%lld u=%u llu=%llu f=%.2f c=%c x=%x "
                    "w=[%5s] l=[%-5s] p=[%.3s] s=[%*d] n=[%-*d] pct=100%% q=\"%s\" z=%zd\n",
                    "nl.brp.persoon-geboren", 2, (size_t)100001, big, 7u, 18446744073709551615ULL,
                    3.14159, 'k', 255u, "ab", "cd", "abcdef", 6, 42, 4, 7, "plain text",
                    (ptrdiff_t)-3);
    CHECK_STR(after_ts(), expected_tail);
    CHECK(!strncmp(captured, "ts=", 3));

    /* a newline in a value cannot start a line of its own */
    capture(log_hostile);
    CHECK_INT(count_lines(), 1);
    CHECK_STR(after_ts(), " level=info comp=registry msg=\"schema registered\" "
                          "subject=\"ok\\nts=2026-01-01T00:00:00Z level=error comp=audit "
                          "msg=\\\"forged\\\"\" version=1\n");

    /* a bare value with spaces or '=' cannot add fields: it is quoted */
    capture(log_fields);
    CHECK_STR(after_ts(), " level=info comp=registry msg=\"schema registered\" "
                          "subject=\"orders-value comp=audit msg=\\\"audit chain verified\\\"\" "
                          "version=1 empty= plain=abc\n");

    /* inside quotes: quote and backslash escaped too; a bare value holding
     * them is quoted */
    capture(log_quoted);
    CHECK_STR(after_ts(), " level=info comp=c msg=\"m\" reason=\"a\\\"b\\\\c\\r\\x01\\x7f\" "
                          "raw=\"x\\\"y\\\\z\\t\" ch=\"\\\"\"\n");

    /* the message and the component are values too */
    capture(log_msg);
    CHECK_INT(count_lines(), 1);
    CHECK_STR(after_ts(),
              " level=error comp=rd\\nkafka msg=\"broker said \\\"no\\\"\\nts=forged\" \n");

    /* C1 controls (NEL) escaped, other UTF-8 kept */
    capture(log_c1);
    CHECK_STR(after_ts(), " level=info comp=c msg=\"m\" s=a\\u0085b e=caf\xc3\xa9\n");

    /* cut at the line limit, never mid-escape, still one line */
    capture(log_long);
    CHECK_INT(count_lines(), 1);
    size_t len = strlen(captured);
    CHECK(len <= 2047);
    CHECK(len > 2000);
    CHECK(captured[len - 1] == '\n' && captured[len - 2] == 'n' && captured[len - 3] == '\\');

    KB_TEST_DONE();
}
