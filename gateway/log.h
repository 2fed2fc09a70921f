/* Leveled logging to stderr. The macro tests the level before any formatting happens, so a
 * disabled debug line on a hot path costs one comparison. Secrets must never be passed here. */
#ifndef GW_LOG_H
#define GW_LOG_H

enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

extern int gw_log_threshold;
/* 1: every line is a JSON object {"ts","level","msg"} (--log-format json); 0: text. */
extern int gw_log_json;

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int gw_log_level_parse(const char *name);

void gw_log_write(enum gw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One HTTP request, for the access log (info level): never the token, only its name. */
struct gw_access {
    const char *method, *path, *request_id, *token_name; /* token_name NULL: none */
    int status;
    unsigned long long bytes;
    double ms;
};
void gw_log_access(const struct gw_access *a);

#define gw_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((int)(level) <= gw_log_threshold)                                                      \
            gw_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#define gw_error(...) gw_log(GW_LOG_ERROR, __VA_ARGS__)
#define gw_warn(...) gw_log(GW_LOG_WARN, __VA_ARGS__)
#define gw_info(...) gw_log(GW_LOG_INFO, __VA_ARGS__)
#define gw_debug(...) gw_log(GW_LOG_DEBUG, __VA_ARGS__)

#endif
