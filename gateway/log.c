/* Log sink: one line per call on stderr, prefixed with a UTC timestamp and the level, written
 * with a single write so lines from the HTTP threads and the loop thread never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int gw_log_threshold = GW_LOG_INFO;
int gw_log_json = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int gw_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* "2026-01-01T00:00:00.000Z" */
static int stamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000);
}

/* Appends s to out as JSON string content (quotes, backslashes and control characters
 * escaped); returns the new length, bounded by cap - 1. */
static size_t json_escape(char *out, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    out[len] = '\0';
    return len;
}

static void emit(char *line, size_t len)
{
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void gw_log_write(enum gw_log_level level, const char *fmt, ...)
{
    char msg[2048], line[4200], ts[96];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    /* Control characters from remote data would let a peer forge log lines. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    stamp(ts, sizeof(ts));
    size_t len;
    if (gw_log_json) {
        len = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                               level_names[level]);
        len = json_escape(line, len, sizeof(line) - 3, msg);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}");
    } else {
        len = (size_t)snprintf(line, sizeof(line), "%s %-5s %s", ts, level_names[level], msg);
    }
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    emit(line, len);
}

void gw_log_access(const struct gw_access *a)
{
    if (GW_LOG_INFO > gw_log_threshold)
        return;
    if (!gw_log_json) {
        gw_log_write(GW_LOG_INFO, "http %s %s %d %lluB %.1fms rid=%s token=%s", a->method, a->path,
                     a->status, a->bytes, a->ms, a->request_id,
                     a->token_name ? a->token_name : "-");
        return;
    }
    char line[4200], ts[96];
    stamp(ts, sizeof(ts));
    size_t len = (size_t)snprintf(
        line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"http\",\"method\":\"", ts);
    len = json_escape(line, len, sizeof(line) - 300, a->method);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"path\":\"");
    len = json_escape(line, len, sizeof(line) - 250, a->path);
    len +=
        (size_t)snprintf(line + len, sizeof(line) - len,
                         "\",\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,\"request_id\":\"",
                         a->status, a->bytes, a->ms);
    len = json_escape(line, len, sizeof(line) - 120, a->request_id);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"token\":\"");
    len = json_escape(line, len, sizeof(line) - 10, a->token_name ? a->token_name : "");
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}");
    emit(line, len);
}
