/* SPDX-License-Identifier: EUPL-1.2 */
/* check.c - BSN, A-nummer and GBA date rules (see ketenbus/check.h). */
#include <string.h>

#include "ketenbus/check.h"

int kb_check_digits(const char *s, size_t len)
{
    if (!len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int kb_check_bsn(const char *s, size_t len)
{
    if (len != 9 || !kb_check_digits(s, len))
        return 0;
    int sum = 0;
    for (int i = 0; i < 8; i++)
        sum += (9 - i) * (s[i] - '0');
    sum -= s[8] - '0';
    /* 000000000 passes the arithmetic but is no BSN. */
    return sum % 11 == 0 && memcmp(s, "000000000", 9) != 0;
}

int kb_check_anummer(const char *s, size_t len)
{
    if (len != 10 || !kb_check_digits(s, len) || s[0] == '0')
        return 0;
    int sum = 0, weighted = 0;
    for (int i = 0; i < 10; i++) {
        int d = s[i] - '0';
        if (i > 0 && s[i] == s[i - 1])
            return 0;
        sum += d;
        weighted += d << i;
    }
    return (sum % 11 == 0 || sum % 11 == 5) && weighted % 11 == 0;
}

int kb_days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

int64_t kb_days_from_civil(int year, int month, int day)
{
    /* Howard Hinnant's well-known civil-date algorithm: eras of 400 years. */
    int yy = month <= 2 ? year - 1 : year;
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

/* The @p n digits at @p s as a number into *@p v; 0 when one is not a digit. */
static int fixed_digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

int kb_time_fields_parse(const char *s, struct kb_time_fields *f, int *zoneless)
{
    memset(f, 0, sizeof *f);
    if (zoneless)
        *zoneless = 0;
    const char *p = s;
    if (strlen(s) < 10 || !fixed_digits(p, 4, &f->year) || p[4] != '-' ||
        !fixed_digits(p + 5, 2, &f->month) || p[7] != '-' || !fixed_digits(p + 8, 2, &f->day))
        return 0;
    p += 10;
    if (!*p)
        return 1; /* a date */
    if ((*p != 'T' && *p != 't' && *p != ' ') || !fixed_digits(p + 1, 2, &f->hour) || p[3] != ':' ||
        !fixed_digits(p + 4, 2, &f->minute) || p[6] != ':' || !fixed_digits(p + 7, 2, &f->second))
        return 0;
    p += 9;
    f->has_time = 1;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                f->millis = f->millis * 10 + (*p - '0');
        if (!n)
            return 0;
        for (; n < 3; n++)
            f->millis *= 10;
    }
    f->zone = p;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && fixed_digits(p + 1, 2, &f->zone_hh) && p[3] == ':' &&
               fixed_digits(p + 4, 2, &f->zone_mm)) {
        f->zone_minutes = (f->zone_hh * 60 + f->zone_mm) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        if (zoneless)
            *zoneless = !*p;
        return 0;
    }
    return !*p;
}

int64_t kb_time_fields_ms(const struct kb_time_fields *f)
{
    int64_t t = kb_days_from_civil(f->year, f->month, f->day) * 86400 + f->hour * 3600 +
                f->minute * 60 + f->second - (int64_t)f->zone_minutes * 60;
    return t * 1000 + f->millis;
}

static int parse_date(const char *s, size_t len, int *y, int *m, int *d)
{
    if (len != 8 || !kb_check_digits(s, 8))
        return 0;
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    *m = (s[4] - '0') * 10 + (s[5] - '0');
    *d = (s[6] - '0') * 10 + (s[7] - '0');
    return 1;
}

int kb_check_gba_date(const char *s, size_t len)
{
    int y, m, d;
    if (!parse_date(s, len, &y, &m, &d))
        return 0;
    if (m == 0)
        return d == 0; /* unknown month implies unknown day; 00000000 included */
    if (y == 0 || m > 12)
        return 0;
    return d == 0 || d <= kb_days_in_month(y, m);
}

int kb_check_date(const char *s, size_t len)
{
    int y, m, d;
    if (!parse_date(s, len, &y, &m, &d))
        return 0;
    return y > 0 && m >= 1 && m <= 12 && d >= 1 && d <= kb_days_in_month(y, m);
}
